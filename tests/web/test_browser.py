"""End to end in a real headless Chromium (Debian's chromium + chromedriver) against a
real server: type a simplified query, see a traditional passage highlighted, page,
open the document; a malicious document shows as text and runs nothing."""

import shutil
from pathlib import Path

import pytest
import requests
from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from search_service.ingest.reindex import build_index
from search_service.settings import Settings
from tests.helpers import SEED_CORPUS, engine_env, on_engine
from tests.web.servers import start_server, stop_server, wait_ready

pytestmark = [pytest.mark.slow, pytest.mark.browser]

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
    for flag in [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=420,900",
        f"--user-data-dir={tmp_path_factory.mktemp('chrome-profile')}",
    ]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def no_alert(driver) -> bool:
    try:
        _ = driver.switch_to.alert
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

    numbers = browser.find_elements(By.CSS_SELECTOR, "nav.pages a.number")
    assert [n.text for n in numbers][:1] == ["1"]
    browser.find_element(By.LINK_TEXT, "3").click()
    WebDriverWait(browser, 10).until(ec.url_contains("page=3"))
    assert browser.find_element(By.CSS_SELECTOR, "nav.pages .current").text == "3"

    # A hit matching through its title shows the title's mark; its link opens the
    # document at that passage, marked, with the query's words marked and a way back.
    browser.get(site + "/?q=医保卡&page=2")
    hits = browser.find_elements(By.CSS_SELECTOR, "li.hit")
    assert all(h.find_elements(By.CSS_SELECTOR, "mark") for h in hits)  # each shows why it matched
    hit = [h for h in hits if h.find_elements(By.CSS_SELECTOR, "h2 mark")][-1]
    hit.find_element(By.CSS_SELECTOR, "h2 a").click()
    WebDriverWait(browser, 10).until(ec.presence_of_element_located((By.CSS_SELECTOR, "article.document")))
    assert "/documents/" in browser.current_url and "q=" in browser.current_url
    target = browser.find_element(By.CSS_SELECTOR, "article.document p.passage.hit")
    assert "#" + target.get_attribute("id") in browser.current_url
    top = browser.execute_script("return arguments[0].getBoundingClientRect().top", target)
    assert 0 <= top < browser.execute_script("return window.innerHeight")  # scrolled to it
    assert browser.find_elements(By.CSS_SELECTOR, "article.document p.passage mark")
    assert browser.find_elements(By.CSS_SELECTOR, "article.document h1 mark")
    assert browser.find_elements(By.CSS_SELECTOR, "article.document h2 mark")  # headings too
    browser.save_screenshot(str(tmp_path / "document.png"))
    browser.find_element(By.ID, "back").click()
    WebDriverWait(browser, 10).until(ec.presence_of_element_located((By.CSS_SELECTOR, "li.hit")))
    assert browser.find_element(By.ID, "q").get_attribute("value") == "医保卡"


def test_grouping_by_document_and_pages_past_the_last(site, browser):
    browser.get(site + "/?q=医保卡")
    browser.find_element(By.ID, "group").click()
    browser.find_element(By.ID, "q").send_keys(Keys.ENTER)
    WebDriverWait(browser, 10).until(ec.url_contains("collapse=doc"))
    hits = browser.find_elements(By.CSS_SELECTOR, "li.hit")
    docs = [h.find_element(By.CSS_SELECTOR, "h2 a").get_attribute("href").split("?")[0] for h in hits]
    assert len(docs) == len(set(docs)) >= 2  # one passage a document
    assert "篇文档" in browser.find_element(By.CSS_SELECTOR, ".summary").text
    assert browser.find_element(By.ID, "group").is_selected()

    browser.get(site + "/?q=医保卡&page=10")
    message = browser.find_element(By.ID, "past-last")
    assert "第 10 页没有结果" in message.text and "共 6 页" in message.text
    assert not browser.find_elements(By.ID, "next") and "没有找到" not in browser.page_source
    message.find_element(By.TAG_NAME, "a").click()
    WebDriverWait(browser, 10).until(ec.url_contains("page=6"))
    assert browser.find_elements(By.CSS_SELECTOR, "li.hit")


def test_with_api_keys_the_page_says_a_key_is_needed_unless_public(whoosh_seed_settings, browser, tmp_path):
    for public in ("false", "true"):
        log = tmp_path / f"server-{public}.log"
        proc, url = start_server(
            Path(whoosh_seed_settings.index_dir), log, SEARCH_API_KEYS="k", SEARCH_PUBLIC_PAGE=public
        )
        try:
            wait_ready(proc, url, log, headers={"X-API-Key": "k"})
            browser.get(url + "/?q=医保卡")
            if public == "false":
                assert "需要 API 密钥" in browser.find_element(By.ID, "key-needed").text
            else:
                assert browser.find_elements(By.CSS_SELECTOR, "li.hit mark")
                browser.find_element(By.CSS_SELECTOR, "li.hit h2 a").click()
                WebDriverWait(browser, 10).until(ec.presence_of_element_located((By.CSS_SELECTOR, "article.document")))
            assert requests.get(url + "/search", params={"q": "医保卡"}, timeout=5).status_code == 401
        finally:
            stop_server(proc)


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
