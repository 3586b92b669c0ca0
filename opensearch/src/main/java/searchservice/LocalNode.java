package searchservice;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.opensearch.analysis.common.CommonAnalysisPlugin;
import org.opensearch.common.logging.LogConfigurator;
import org.opensearch.common.settings.Settings;
import org.opensearch.node.InternalSettingsPreparer;
import org.opensearch.node.Node;
import org.opensearch.transport.Netty4Plugin;

/**
 * One OpenSearch node in this JVM, on loopback, with its modules loaded from the classpath.
 *
 * <p>OpenSearch's own start-up (its Bootstrap) refuses to run as root and expects a distribution
 * folder with modules; a {@link Node} built directly takes its plugins as classes, as OpenSearch's
 * test framework does, and binds to 127.0.0.1 only, so no production bootstrap check applies.
 *
 * <p>Usage: {@code java -Xmx256m -cp 'target/classes:target/lib/*' searchservice.LocalNode
 * --name n1 --home DIR --http-port 9200 --transport-port 9300 --seeds 127.0.0.1:9300,127.0.0.1:9301
 * --cluster-managers n1,n2 [--cluster NAME]}. It runs until SIGTERM or SIGINT, then closes the
 * node (a clean shutdown) and exits 0; it prints {@code started <http port>} once the node is up.
 */
public final class LocalNode extends Node {

    private LocalNode(Settings settings) {
        super(InternalSettingsPreparer.prepareEnvironment(settings, Collections.emptyMap(), null,
                () -> settings.get("node.name")), List.of(Netty4Plugin.class, CommonAnalysisPlugin.class), true);
    }

    public static void main(String[] args) throws Exception {
        Map<String, String> options = parse(args);
        Path home = Path.of(require(options, "home")).toAbsolutePath();
        Files.createDirectories(home.resolve("data"));
        Files.createDirectories(home.resolve("logs"));
        Files.createDirectories(home.resolve("config"));
        Settings settings = Settings.builder()
            .put("cluster.name", options.getOrDefault("cluster", "search-service-local"))
            .put("node.name", require(options, "name"))
            .put("path.home", home.toString())
            .put("path.data", home.resolve("data").toString())
            .put("path.logs", home.resolve("logs").toString())
            .put("network.host", "127.0.0.1")
            .put("http.port", require(options, "http-port"))
            .put("transport.port", require(options, "transport-port"))
            .putList("discovery.seed_hosts", Arrays.asList(require(options, "seeds").split(",")))
            .putList("cluster.initial_cluster_manager_nodes",
                Arrays.asList(require(options, "cluster-managers").split(",")))
            .put("http.type", "netty4")
            .put("transport.type", "netty4")
            // A test cluster fills a small disk quickly: never refuse writes for free space.
            .put("cluster.routing.allocation.disk.threshold_enabled", false)
            .put("action.auto_create_index", false)
            .build();
        LogConfigurator.registerErrorListener();
        LogConfigurator.setNodeName(settings.get("node.name"));
        LogConfigurator.configureWithoutConfig(settings);

        LocalNode node = new LocalNode(settings);
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                node.close();
                node.awaitClose(20, TimeUnit.SECONDS);
            } catch (Exception e) {
                e.printStackTrace();
            } finally {
                stopped.countDown();
            }
        }, "local-node-shutdown"));
        node.start();
        System.out.println("started " + settings.get("http.port"));
        System.out.flush();
        stopped.await();
    }

    private static Map<String, String> parse(String[] args) {
        Map<String, String> options = new HashMap<>();
        for (int i = 0; i + 1 < args.length; i += 2) {
            if (!args[i].startsWith("--")) {
                throw new IllegalArgumentException("expected --option value pairs, got " + args[i]);
            }
            options.put(args[i].substring(2), args[i + 1]);
        }
        return options;
    }

    private static String require(Map<String, String> options, String name) {
        String value = options.get(name);
        if (value == null) {
            throw new IllegalArgumentException("missing --" + name);
        }
        return value;
    }
}
