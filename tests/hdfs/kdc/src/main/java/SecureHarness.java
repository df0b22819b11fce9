import java.io.BufferedReader;
import java.io.File;
import java.io.FileOutputStream;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.Properties;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.hdfs.HdfsConfiguration;
import org.apache.hadoop.hdfs.MiniDFSCluster;
import org.apache.hadoop.minikdc.MiniKdc;
import org.apache.hadoop.security.UserGroupInformation;

/**
 * A Kerberized HDFS for one test: MiniKdc, principals hdfs/localhost, HTTP/localhost and
 * sparkhist in one keytab, a one-NameNode, one-DataNode MiniDFSCluster with Kerberos RPC
 * authentication and SASL-protected data transfer, and one event-log-like file written.
 *
 * stdout, one line: {@code READY nn=127.0.0.1:PORT realm=R krb5=PATH keytab=PATH principal=P path=P size=N}.
 * Any line on stdin (or EOF) shuts everything down. Logs go to stderr.
 */
public class SecureHarness {
  public static void main(String[] args) throws Exception {
    File work = new File(args[0]);
    work.mkdirs();
    Properties kdcConf = MiniKdc.createConf();
    MiniKdc kdc = new MiniKdc(kdcConf, new File(work, "kdc"));
    kdc.start();
    MiniDFSCluster cluster = null;
    try {
      String realm = kdc.getRealm();
      File keytab = new File(work, "test.keytab");
      kdc.createPrincipal(keytab, "hdfs/localhost", "HTTP/localhost", "sparkhist");

      Configuration conf = new HdfsConfiguration();
      conf.set("hadoop.security.authentication", "kerberos");
      conf.set("dfs.namenode.kerberos.principal", "hdfs/localhost@" + realm);
      conf.set("dfs.namenode.keytab.file", keytab.getAbsolutePath());
      conf.set("dfs.datanode.kerberos.principal", "hdfs/localhost@" + realm);
      conf.set("dfs.datanode.keytab.file", keytab.getAbsolutePath());
      conf.set("dfs.web.authentication.kerberos.principal", "HTTP/localhost@" + realm);
      conf.set("dfs.web.authentication.kerberos.keytab", keytab.getAbsolutePath());
      conf.setBoolean("dfs.block.access.token.enable", true);
      conf.set("dfs.data.transfer.protection", "authentication");
      conf.set("dfs.http.policy", "HTTP_ONLY");
      conf.setBoolean("ignore.secure.ports.for.testing", true);
      conf.setBoolean("dfs.permissions.enabled", false);
      conf.set("hadoop.security.auth_to_local", "RULE:[1:$1] RULE:[2:$1] DEFAULT");
      conf.set("dfs.namenode.rpc-address", "127.0.0.1:0");
      conf.setLong("dfs.blocksize", 1024 * 1024);
      conf.set("hdfs.minidfs.basedir", new File(work, "data").getAbsolutePath());
      UserGroupInformation.setConfiguration(conf);
      UserGroupInformation.loginUserFromKeytab("hdfs/localhost@" + realm, keytab.getAbsolutePath());

      cluster = new MiniDFSCluster.Builder(conf).numDataNodes(1).build();
      cluster.waitActive();
      FileSystem fs = cluster.getFileSystem();
      Path dir = new Path("/spark-events");
      fs.mkdirs(dir);
      Path file = new Path(dir, "app-1");
      StringBuilder sb = new StringBuilder();
      for (int i = 0; i < 30000; i++) {
        sb.append("{\"Event\":\"Test\",\"n\":").append(i).append("}\n");
      }
      byte[] bytes = sb.toString().getBytes(StandardCharsets.UTF_8);
      try (FSDataOutputStream out = fs.create(file, true)) {
        out.write(bytes);
      }
      int port = cluster.getNameNode().getNameNodeAddress().getPort();
      File site = new File(work, "conf");
      site.mkdirs();
      try (OutputStream out = new FileOutputStream(new File(site, "core-site.xml"))) {
        Configuration client = new Configuration(false);
        client.set("fs.defaultFS", "hdfs://127.0.0.1:" + port);
        client.set("hadoop.security.authentication", "kerberos");
        client.set("dfs.data.transfer.protection", "authentication");
        client.set("dfs.namenode.kerberos.principal", "hdfs/localhost@" + realm);
        client.writeXml(out);
      }
      System.out.println("READY nn=127.0.0.1:" + port + " realm=" + realm + " krb5=" + kdc.getKrb5conf().getAbsolutePath()
          + " keytab=" + keytab.getAbsolutePath() + " principal=sparkhist@" + realm + " conf=" + site.getAbsolutePath()
          + " path=" + file + " size=" + bytes.length);
      System.out.flush();
      new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8)).readLine();
    } catch (Throwable t) {
      System.out.println("ERR " + t);
      t.printStackTrace();
      System.out.flush();
    } finally {
      if (cluster != null) {
        cluster.shutdown();
      }
      kdc.stop();
    }
    System.exit(0);
  }
}
