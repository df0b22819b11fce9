import java.io.BufferedReader;
import java.io.File;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.io.PrintStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.hdfs.HdfsConfiguration;
import org.apache.hadoop.hdfs.MiniDFSCluster;
import org.apache.hadoop.hdfs.MiniDFSNNTopology;
import org.apache.hadoop.hdfs.server.datanode.DataNode;
import org.apache.hadoop.hdfs.server.namenode.NameNode;
import org.apache.hadoop.hdfs.server.namenode.ha.HATestUtil;

/**
 * A two-NameNode HA MiniDFSCluster driven by commands on stdin (sparkhist tests only).
 *
 * <pre>
 * java -cp ... HaHarness WORKDIR [datanodes=2] [blocksize=1048576] [rpcproxy=P0,P1] [httpproxy=P0,P1]
 *     [webhdfs=false]
 * </pre>
 *
 * {@code webhdfs=false}: the NameNodes' HTTP servers run but answer 404 (a Jetty error page, no
 * {@code RemoteException}) to everything under {@code /webhdfs/}, as a Hadoop 2 NameNode with
 * {@code dfs.webhdfs.enabled=false} does, or a front end that blocks the path. Hadoop 3 ignores
 * {@code dfs.webhdfs.enabled} (its NameNode always mounts WebHDFS), so the harness adds
 * {@link NoWebHdfs}, a servlet filter, to every NameNode HTTP server through
 * {@code hadoop.http.filter.initializers} (it also sets the key, for what still reads it).
 *
 * stdout carries only the protocol: one {@code READY conf=DIR nn0=H:P nn1=H:P http0=H:P http1=H:P}
 * line, then one {@code OK ...} or {@code ERR ...} line per command. Everything Hadoop logs,
 * and anything it prints, goes to WORKDIR/harness.log. The client configuration in
 * WORKDIR/conf names each NameNode by its proxy port when one is given (the proxy is the
 * test's business), otherwise by its real port.
 *
 * Commands: state | failover FROM TO [GAP_MS] | active I | standby I | kill I | restart I |
 * killdn J | restartdn J | wopen PATH | wtext PATH TEXT... | wlines PATH START COUNT PAD |
 * hflush PATH | hsync PATH | wclose PATH | shutdown. EOF means shutdown.
 */
public final class HaHarness {
  private static final String NS = "minidfs-ns";

  /** Answers 404 under /webhdfs/ (no RemoteException): WebHDFS is not served here. */
  public static final class NoWebHdfs implements javax.servlet.Filter {
    @Override
    public void init(javax.servlet.FilterConfig config) {
    }

    @Override
    public void doFilter(javax.servlet.ServletRequest req, javax.servlet.ServletResponse res,
        javax.servlet.FilterChain chain) throws IOException, javax.servlet.ServletException {
      String uri = ((javax.servlet.http.HttpServletRequest) req).getRequestURI();
      if (uri != null && uri.startsWith("/webhdfs/")) {
        ((javax.servlet.http.HttpServletResponse) res).sendError(404, "Not Found");
        return;
      }
      chain.doFilter(req, res);
    }

    @Override
    public void destroy() {
    }
  }

  /** Puts {@link NoWebHdfs} in front of every servlet of an HTTP server (hadoop.http.filter.initializers). */
  public static final class NoWebHdfsInitializer extends org.apache.hadoop.http.FilterInitializer {
    @Override
    public void initFilter(org.apache.hadoop.http.FilterContainer container, Configuration conf) {
      container.addGlobalFilter("no-webhdfs", NoWebHdfs.class.getName(), new HashMap<>());
    }
  }

  private final MiniDFSCluster cluster;
  private final Configuration conf;
  private final List<MiniDFSCluster.DataNodeProperties> stoppedDns = new ArrayList<>();
  private final Map<Integer, String> dnNames = new HashMap<>();
  private final Map<Integer, MiniDFSCluster.DataNodeProperties> stopped = new HashMap<>();
  private final Map<String, FSDataOutputStream> writers = new HashMap<>();
  private FileSystem fs;
  private final boolean webhdfs;

  private HaHarness(MiniDFSCluster cluster, Configuration conf, boolean webhdfs) {
    this.cluster = cluster;
    this.conf = conf;
    this.webhdfs = webhdfs;
  }

  public static void main(String[] args) throws Exception {
    if (args.length < 1) {
      System.err.println("usage: HaHarness WORKDIR [datanodes=N] [blocksize=B] [rpcproxy=P0,P1] [httpproxy=P0,P1] [webhdfs=false]");
      System.exit(2);
    }
    File work = new File(args[0]).getAbsoluteFile();
    work.mkdirs();
    Map<String, String> opts = new HashMap<>();
    for (int i = 1; i < args.length; i++) {
      String[] kv = args[i].split("=", 2);
      opts.put(kv[0], kv.length > 1 ? kv[1] : "");
    }

    // The protocol owns the real stdout; everything else goes to the log file.
    PrintStream proto = new PrintStream(new FileOutputStream(java.io.FileDescriptor.out), true, "UTF-8");
    PrintStream logStream = new PrintStream(new FileOutputStream(new File(work, "harness.log"), true), true, "UTF-8");
    System.setOut(logStream);
    System.setErr(logStream);
    configureLogging(new File(work, "harness.log"));

    int datanodes = Integer.parseInt(opts.getOrDefault("datanodes", "2"));
    long blockSize = Long.parseLong(opts.getOrDefault("blocksize", "1048576"));
    boolean webhdfs = !"false".equals(opts.getOrDefault("webhdfs", "true"));

    Configuration conf = new HdfsConfiguration();
    conf.set(MiniDFSCluster.HDFS_MINIDFS_BASEDIR, new File(work, "data").getPath());
    conf.setLong("dfs.blocksize", blockSize);
    conf.setLong("dfs.namenode.fs-limits.min-block-size", Math.min(blockSize, 1048576L));
    conf.setInt("dfs.bytes-per-checksum", 512);
    conf.setInt("dfs.replication", Math.min(2, datanodes));
    conf.setInt("dfs.namenode.safemode.extension", 0);
    conf.setBoolean("dfs.permissions.enabled", false);
    conf.setBoolean("dfs.webhdfs.enabled", webhdfs);
    if (!webhdfs) {
      String inits = conf.get("hadoop.http.filter.initializers", "");
      conf.set("hadoop.http.filter.initializers",
          (inits.isEmpty() ? "" : inits + ",") + NoWebHdfsInitializer.class.getName());
    }
    conf.set("dfs.ha.tail-edits.period", "1s");
    conf.setInt("dfs.heartbeat.interval", 1);
    conf.set("dfs.namenode.rpc-bind-host", "127.0.0.1");
    conf.set("dfs.namenode.http-bind-host", "127.0.0.1");
    // DataNodes serve WebHDFS reads with a DFSClient of their own; a NameNode that knows it
    // is in HA redirects with namenoderpcaddress=<nameservice>, which they must resolve.
    conf.set("dfs.client.failover.proxy.provider." + NS,
        "org.apache.hadoop.hdfs.server.namenode.ha.ConfiguredFailoverProxyProvider");
    // The harness's own writer must not wait minutes on a down NameNode either.
    conf.setInt("dfs.client.failover.max.attempts", 4);
    conf.setInt("dfs.client.failover.sleep.base.millis", 100);
    conf.setInt("dfs.client.failover.sleep.max.millis", 500);
    conf.setInt("ipc.client.connect.max.retries", 1);
    conf.setInt("ipc.client.connect.max.retries.on.timeouts", 1);

    long t0 = System.nanoTime();
    MiniDFSCluster cluster = new MiniDFSCluster.Builder(conf)
        .nnTopology(MiniDFSNNTopology.simpleHATopology(2))
        .numDataNodes(datanodes)
        .build();
    HaHarness h = new HaHarness(cluster, conf, webhdfs);
    Runtime.getRuntime().addShutdownHook(new Thread(h::shutdownQuietly));
    try {
      cluster.waitActive();
      cluster.transitionToActive(0);
      cluster.waitActive();
      for (int j = 0; j < cluster.getDataNodes().size(); j++) {
        h.dnNames.put(j, cluster.getDataNodes().get(j).getDatanodeId().getXferAddr());
      }
      File confDir = new File(work, "conf");
      h.writeClientConf(confDir, opts.get("rpcproxy"), opts.get("httpproxy"));
      long ms = (System.nanoTime() - t0) / 1_000_000;
      StringBuilder ready = new StringBuilder("READY conf=").append(confDir.getPath());
      for (int i = 0; i < 2; i++) {
        ready.append(" nn").append(i).append('=').append(hostPort(cluster.getNameNode(i).getNameNodeAddress()));
      }
      for (int i = 0; i < 2; i++) {
        ready.append(" http").append(i).append('=').append(hostPort(cluster.getNameNode(i).getHttpAddress()));
      }
      ready.append(" ns=").append(NS).append(" ms=").append(ms);
      proto.println(ready);
      h.loop(proto);
    } catch (Throwable t) {
      t.printStackTrace(logStream);
      proto.println("ERR fatal " + oneLine(t));
    } finally {
      h.shutdownQuietly();
    }
    System.exit(0);
  }

  private static void configureLogging(File file) {
    try {
      org.apache.log4j.Logger root = org.apache.log4j.Logger.getRootLogger();
      root.removeAllAppenders();
      root.setLevel(org.apache.log4j.Level.INFO);
      root.addAppender(new org.apache.log4j.FileAppender(
          new org.apache.log4j.PatternLayout("%d{ISO8601} %-5p %c{1}: %m%n"), file.getPath(), true));
      org.apache.log4j.Logger.getLogger("org.apache.hadoop.metrics2").setLevel(org.apache.log4j.Level.WARN);
    } catch (IOException e) {
      e.printStackTrace();
    }
  }

  private static String hostPort(InetSocketAddress a) {
    return "127.0.0.1:" + a.getPort();
  }

  private static String oneLine(Throwable t) {
    String m = t.getClass().getSimpleName() + ": " + t.getMessage();
    return m.replace('\n', ' ').replace('\r', ' ');
  }

  /** core-site.xml + hdfs-site.xml naming the NameNodes through the proxies when given. */
  private void writeClientConf(File dir, String rpcProxy, String httpProxy) throws IOException {
    dir.mkdirs();
    String[] rpc = rpcProxy == null || rpcProxy.isEmpty() ? null : rpcProxy.split(",");
    String[] http = httpProxy == null || httpProxy.isEmpty() ? null : httpProxy.split(",");
    Configuration core = new Configuration(false);
    core.set("fs.defaultFS", "hdfs://" + NS);
    Configuration hdfs = new Configuration(false);
    hdfs.set("dfs.nameservices", NS);
    hdfs.set("dfs.ha.namenodes." + NS, "nn0,nn1");
    hdfs.set("dfs.client.failover.proxy.provider." + NS,
        "org.apache.hadoop.hdfs.server.namenode.ha.ConfiguredFailoverProxyProvider");
    for (int i = 0; i < 2; i++) {
      NameNode nn = cluster.getNameNode(i);
      int rpcPort = rpc != null ? Integer.parseInt(rpc[i]) : nn.getNameNodeAddress().getPort();
      int httpPort = http != null ? Integer.parseInt(http[i]) : nn.getHttpAddress().getPort();
      hdfs.set("dfs.namenode.rpc-address." + NS + ".nn" + i, "127.0.0.1:" + rpcPort);
      hdfs.set("dfs.namenode.http-address." + NS + ".nn" + i, "127.0.0.1:" + httpPort);
    }
    hdfs.set("dfs.replication", conf.get("dfs.replication"));
    hdfs.set("dfs.blocksize", conf.get("dfs.blocksize"));
    hdfs.setBoolean("dfs.webhdfs.enabled", webhdfs);
    try (OutputStream out = new FileOutputStream(new File(dir, "core-site.xml"))) {
      core.writeXml(out);
    }
    try (OutputStream out = new FileOutputStream(new File(dir, "hdfs-site.xml"))) {
      hdfs.writeXml(out);
    }
  }

  private void loop(PrintStream proto) throws IOException {
    BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    String line;
    while ((line = in.readLine()) != null) {
      line = line.trim();
      if (line.isEmpty()) {
        continue;
      }
      if (line.equals("shutdown")) {
        shutdownQuietly();
        proto.println("OK shutdown");
        return;
      }
      String reply;
      try {
        reply = "OK " + handle(line.split(" "));
      } catch (Throwable t) {
        t.printStackTrace();
        reply = "ERR " + oneLine(t);
      }
      proto.println(reply.trim());
    }
  }

  private String handle(String[] c) throws Exception {
    switch (c[0]) {
      case "state":
        return state();
      case "failover": {
        int from = Integer.parseInt(c[1]);
        int to = Integer.parseInt(c[2]);
        if (cluster.getNameNode(from) != null) {
          cluster.transitionToStandby(from);
        }
        if (c.length > 3) {
          Thread.sleep(Long.parseLong(c[3]));  // both standby meanwhile, as during a ZKFC failover
        }
        cluster.transitionToActive(to);
        return state();
      }
      case "active":
        cluster.transitionToActive(Integer.parseInt(c[1]));
        return state();
      case "standby":
        cluster.transitionToStandby(Integer.parseInt(c[1]));
        return state();
      case "kill":
        cluster.shutdownNameNode(Integer.parseInt(c[1]));
        return state();
      case "restart": {
        int i = Integer.parseInt(c[1]);
        cluster.restartNameNode(i, false);
        waitForDataNodes(i, 30_000);
        return state();
      }
      case "killdn": {
        int j = Integer.parseInt(c[1]);
        MiniDFSCluster.DataNodeProperties p = cluster.stopDataNode(dnNames.get(j));
        if (p == null) {
          throw new IllegalStateException("datanode " + j + " is not running");
        }
        stopped.put(j, p);
        return state();
      }
      case "restartdn": {
        int j = Integer.parseInt(c[1]);
        MiniDFSCluster.DataNodeProperties p = stopped.remove(j);
        if (p == null) {
          throw new IllegalStateException("datanode " + j + " was not stopped");
        }
        cluster.restartDataNode(p, true);
        cluster.waitActive();
        return state();
      }
      case "wopen": {
        Path p = new Path(c[1]);
        writers.put(c[1], fs().create(p, true));
        return "wopen " + c[1];
      }
      case "wtext": {
        FSDataOutputStream out = writer(c[1]);
        StringBuilder sb = new StringBuilder();
        for (int k = 2; k < c.length; k++) {
          sb.append(k > 2 ? " " : "").append(c[k]);
        }
        sb.append('\n');
        out.write(sb.toString().getBytes(StandardCharsets.UTF_8));
        return "pos=" + out.getPos();
      }
      case "wlines": {
        FSDataOutputStream out = writer(c[1]);
        long start = Long.parseLong(c[2]);
        long count = Long.parseLong(c[3]);
        String pad = "x".repeat(Integer.parseInt(c[4]));
        for (long n = start; n < start + count; n++) {
          out.write(("{\"Event\":\"Test\",\"n\":" + n + ",\"pad\":\"" + pad + "\"}\n")
              .getBytes(StandardCharsets.UTF_8));
        }
        return "pos=" + out.getPos();
      }
      case "hflush": {
        FSDataOutputStream out = writer(c[1]);
        out.hflush();
        return "pos=" + out.getPos();
      }
      case "hsync": {
        FSDataOutputStream out = writer(c[1]);
        out.hsync();
        return "pos=" + out.getPos();
      }
      case "wclose": {
        FSDataOutputStream out = writers.remove(c[1]);
        if (out == null) {
          throw new IllegalStateException("not open: " + c[1]);
        }
        long pos = out.getPos();
        out.close();
        return "pos=" + pos;
      }
      default:
        throw new IllegalArgumentException("unknown command " + c[0]);
    }
  }

  /** A restarted NameNode knows no DataNode until they re-register (one heartbeat or so). */
  private void waitForDataNodes(int nn, long timeoutMs) throws IOException, InterruptedException {
    long deadline = System.currentTimeMillis() + timeoutMs;
    int expected = cluster.getDataNodes().size();
    cluster.triggerHeartbeats();
    while (usableDataNodes(nn) < expected) {
      if (System.currentTimeMillis() > deadline) {
        throw new IllegalStateException("datanodes did not register with nn" + nn);
      }
      Thread.sleep(100);
    }
  }

  /** Live DataNodes whose storage (space) the NameNode knows: only those can take blocks. */
  private int usableDataNodes(int nn) {
    int n = 0;
    for (org.apache.hadoop.hdfs.server.blockmanagement.DatanodeDescriptor d
        : cluster.getNamesystem(nn).getBlockManager().getDatanodeManager()
            .getDatanodeListForReport(org.apache.hadoop.hdfs.protocol.HdfsConstants.DatanodeReportType.LIVE)) {
      if (d.getRemaining() > 0) {
        n++;
      }
    }
    return n;
  }

  private FSDataOutputStream writer(String path) {
    FSDataOutputStream out = writers.get(path);
    if (out == null) {
      throw new IllegalStateException("not open: " + path);
    }
    return out;
  }

  private FileSystem fs() throws Exception {
    if (fs == null) {
      fs = HATestUtil.configureFailoverFs(cluster, conf);
    }
    return fs;
  }

  private String state() {
    StringBuilder sb = new StringBuilder();
    for (int i = 0; i < 2; i++) {
      NameNode nn = cluster.getNameNode(i);
      String s;
      if (nn == null) {
        s = "down";
      } else {
        try {
          s = nn.isActiveState() ? "active" : nn.isStandbyState() ? "standby" : "other";
        } catch (Exception e) {
          s = "unknown";
        }
      }
      sb.append("nn").append(i).append('=').append(s).append(' ');
    }
    for (Map.Entry<Integer, String> e : dnNames.entrySet()) {
      boolean up = false;
      for (DataNode dn : cluster.getDataNodes()) {
        if (dn.getDatanodeId().getXferAddr().equals(e.getValue())) {
          up = dn.isDatanodeUp();
        }
      }
      sb.append("dn").append(e.getKey()).append('=').append(up ? "up" : "down").append(' ');
    }
    return sb.toString().trim();
  }

  private boolean shutDown;

  private synchronized void shutdownQuietly() {
    if (shutDown) {
      return;
    }
    shutDown = true;
    for (FSDataOutputStream out : writers.values()) {
      try {
        out.close();
      } catch (Exception ignored) {
        // the cluster is going away
      }
    }
    writers.clear();
    try {
      cluster.shutdown(true);
    } catch (Throwable t) {
      t.printStackTrace();
    }
  }
}
