// Prints the iteration order of the map Spark's own JsonProtocol.mapFromJson builds from a JSON
// object (an executor's "Log Urls" and "Attributes", the driver's "Driver Logs"), as the SHS
// reads event logs (tests/state/test_executor_logs_order.py compares it with
// sparkhist.state.scala_order.map_from_json). One JSON object per input line; one JSON array of
// its keys per output line.
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import scala.collection.Iterator;
import scala.collection.Map;

public final class MapFromJsonProbe {
  public static void main(String[] args) throws Exception {
    ObjectMapper mapper = new ObjectMapper();
    BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    StringBuilder answers = new StringBuilder();
    for (String line; (line = in.readLine()) != null; ) {
      Map<String, String> map = org.apache.spark.util.JsonProtocol$.MODULE$.mapFromJson(mapper.readTree(line));
      Iterator<String> keys = map.keysIterator();
      StringBuilder answer = new StringBuilder("[");
      while (keys.hasNext()) {
        if (answer.length() > 1) answer.append(',');
        answer.append(mapper.writeValueAsString(keys.next()));
      }
      answers.append(answer).append("]\n");
    }
    System.out.print(answers);
  }
}
