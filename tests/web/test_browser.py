"""End to end in a real headless Chromium (Debian's chromium + chromedriver) against a
real server: type a simplified query, see a traditional passage highlighted, page,
open the document; a malicious document shows as text and runs nothing."""

import shutil
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tests.helpers import SEED_CORPUS
from search_service.build.reindex import build_index
from search_service.settings import Settings
from tests.conftest import on_engine
from tests.helpers import engine_env
from tests.web.servers import start_server, stop_server, wait_ready

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
EVIL = "惡意文件\n醫保卡攻擊測試：<script>alert(1)</script> 以及 <img src=x onerror=alert(1)> 都應該顯示為文字。"


@pytest.fixture(scope="module")
def site(tmp_path_factory, engine, request):
    tmp = tmp_path_factory.mktemp("browser")
    corpus = tmp / "corpus"
    shutil.copytree(SEED_CORPUS, corpus)
    (corpus / "evil.txt").write_text(EVIL, encoding="utf-8")
    settings = on_engine(Settings.from_env(corpus_dir=str(corpus), index_dir=str(tmp / "index")), engine, request)
    build_index(settings)
    log = tmp / "server.log"
    proc, url = start_server(Path(settings.index_dir), log, **engine_env(settings))
    wait_ready(proc, url, log)
    yield url
    stop_server(proc)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.fail("Debian's chromium and chromium-driver are required: bash scripts/run.sh test installs them")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=420,900", f"--user-data-dir={tmp_path_factory.mktemp('chrome-profile')}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def no_alert(driver) -> bool:
    try:
        driver.switch_to.alert
    except NoAlertPresentException:
        return True
    return False


def test_search_page_end_to_end(site, browser, tmp_path):
    browser.get(site + "/")
    box = browser.find_element(By.ID, "q")
    box.send_keys("医保卡被锁了怎么解锁")
    box.send_keys(Keys.ENTER)
    WebDriverWait(browser, 10).until(ec.presence_of_element_located((By.CSS_SELECTOR, "li.hit")))
    assert "q=" in browser.current_url  # a shareable URL
    assert browser.find_element(By.ID, "q").get_attribute("value") == "医保卡被锁了怎么解锁"
    first = browser.find_elements(By.CSS_SELECTOR, "li.hit")[0]
    marks = [m.text for m in first.find_elements(By.TAG_NAME, "mark")]
    assert "醫保卡" in marks or "醫保卡被鎖" in marks  # traditional characters, highlighted
    browser.save_screenshot(str(tmp_path / "results.png"))
    assert (tmp_path / "results.png").stat().st_size > 1000

    browser.find_element(By.ID, "next").click()
    WebDriverWait(browser, 10).until(ec.url_contains("page=2"))
    assert browser.find_elements(By.CSS_SELECTOR, "li.hit")
    assert browser.find_element(By.CSS_SELECTOR, "ol.hits").get_attribute("start") == "11"

    browser.find_elements(By.CSS_SELECTOR, "li.hit h2 a")[0].click()
    WebDriverWait(browser, 10).until(ec.presence_of_element_located((By.CSS_SELECTOR, "article.document")))
    assert "/documents/" in browser.current_url
    assert browser.find_elements(By.CSS_SELECTOR, "article.document p.passage")


def test_malicious_document_shows_as_text_and_runs_nothing(site, browser, tmp_path):
    browser.get(site + "/?q=" + "醫保卡攻擊測試")
    WebDriverWait(browser, 10).until(ec.presence_of_element_located((By.CSS_SELECTOR, "li.hit")))
    text = browser.find_element(By.CSS_SELECTOR, "li.hit p.passage").text
    assert "<script>alert(1)</script>" in text and "<img src=x onerror=alert(1)>" in text
    assert no_alert(browser)
    assert not browser.find_elements(By.CSS_SELECTOR, "main img, main script")
    browser.get(site + "/documents/evil")
    assert "<script>alert(1)</script>" in browser.find_element(By.CSS_SELECTOR, "article.document").text
    assert no_alert(browser)
    browser.get(site + "/?q=" + "<script>alert(1)</script>")
    assert no_alert(browser)
    assert browser.find_element(By.ID, "q").get_attribute("value") == "<script>alert(1)</script>"


def test_bad_query_and_empty_result_messages(site, browser):
    browser.get(site + "/?q=" + "长" * 300)
    assert "查询太长" in browser.find_element(By.CSS_SELECTOR, ".message.error").text
    browser.get(site + "/?q=" + "xyzzyqwerty")
    assert browser.find_element(By.ID, "total").text == "0"
    assert "没有找到" in browser.find_element(By.CSS_SELECTOR, ".message.empty").text
