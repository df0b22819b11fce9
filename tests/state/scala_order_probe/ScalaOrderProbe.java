// Prints the iteration order of Scala 2.13 immutable collections built as Spark's
// SQLAppStatusListener builds them (tests/state/test_scala_order.py compares it with
// sparkhist.state.scala_order). One answer line per input line:
//   jobs 0 1 2 ...        Map[Int, JobExecutionStatus]: jobs + (id -> RUNNING) per id, then
//                         jobs + (id -> SUCCEEDED | FAILED) per id; prints jobs.foreach's keys
//   stages 1,2;3;4,5,6    Set[Int]: stages ++= stageIds.toSet per job; prints stages.toSeq
//   configs {"k":"v",...} Map[String, String] read by Jackson with DefaultScalaModule (as
//                         JsonProtocol reads SparkListenerSQLExecutionStart); prints its keys
// Answers are JSON arrays.
import com.fasterxml.jackson.databind.JavaType;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.module.scala.DefaultScalaModule$;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.apache.spark.JobExecutionStatus;
import scala.Tuple2;
import scala.collection.Iterator;
import scala.collection.immutable.Map;
import scala.collection.immutable.Set;
import scala.jdk.javaapi.CollectionConverters;

public final class ScalaOrderProbe {
  private static final ObjectMapper MAPPER = new ObjectMapper().registerModule(DefaultScalaModule$.MODULE$);

  @SuppressWarnings("unchecked")
  static List<Object> jobs(String[] ids) {
    Map<Object, JobExecutionStatus> jobs = scala.collection.immutable.Map$.MODULE$.empty();
    for (String id : ids) {
      jobs = (Map<Object, JobExecutionStatus>) jobs.$plus(new Tuple2<>(Integer.valueOf(id), JobExecutionStatus.RUNNING));
    }
    for (String id : ids) {
      int job = Integer.parseInt(id);
      JobExecutionStatus end = job % 3 == 0 ? JobExecutionStatus.FAILED : JobExecutionStatus.SUCCEEDED;
      jobs = (Map<Object, JobExecutionStatus>) jobs.$plus(new Tuple2<>(job, end));
    }
    List<Object> out = new ArrayList<>();
    Iterator<Tuple2<Object, JobExecutionStatus>> it = jobs.iterator();
    while (it.hasNext()) out.add(it.next()._1());
    return out;
  }

  @SuppressWarnings("unchecked")
  static List<Object> stages(String groups) {
    Set<Object> stages = scala.collection.immutable.Set$.MODULE$.empty();
    for (String group : groups.split(";")) {
      List<Object> stageIds = new ArrayList<>();
      for (String id : group.split(",")) stageIds.add(Integer.valueOf(id.trim()));
      scala.collection.immutable.Seq<Object> seq = CollectionConverters.asScala(stageIds).toList();
      stages = (Set<Object>) stages.$plus$plus(seq.toSet());
    }
    return new ArrayList<>(CollectionConverters.asJava(stages.toSeq()));
  }

  @SuppressWarnings("unchecked")
  static List<Object> configs(String json) throws Exception {
    JavaType type = MAPPER.getTypeFactory().constructMapLikeType(Map.class, String.class, String.class);
    Map<String, String> configs = (Map<String, String>) MAPPER.readValue(json, type);
    List<Object> out = new ArrayList<>();
    Iterator<String> it = configs.keysIterator();
    while (it.hasNext()) out.add(it.next());
    return out;
  }

  public static void main(String[] args) throws Exception {
    BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    StringBuilder answers = new StringBuilder();
    for (String line; (line = in.readLine()) != null; ) {
      int space = line.indexOf(' ');
      String kind = line.substring(0, space);
      String rest = line.substring(space + 1);
      List<Object> order;
      switch (kind) {
        case "jobs": order = jobs(rest.trim().split(" +")); break;
        case "stages": order = stages(rest); break;
        case "configs": order = configs(rest); break;
        default: throw new IllegalArgumentException("unknown kind " + kind);
      }
      answers.append(MAPPER.writeValueAsString(order)).append('\n');
    }
    System.out.write(answers.toString().getBytes(StandardCharsets.UTF_8));
    System.out.flush();
  }
}
