// A small Java app (JDK 17, no dependencies) that takes rotated credentials without a restart.
//
// It reads a dotenv file rendered by infisical-reloader (templates/dotenv/app.env.hbs: one
// KEY="value" line per secret, values as JSON strings), keeps one credential in memory, and
// re-reads the file on SIGHUP -- the reloader's `reload: { signal: HUP, pidFile: ... }`.
//
// It never prints or serves the credential. GET /fingerprint answers with its SHA-256 instead:
//   {"key":"DB_PASSWORD","sha256":"9f86...","pid":123,"reloads":1,"loadedAt":"..."}
//
// Run (JDK 11+ launches a single source file directly; it compiles in memory at each start):
//   java App.java --config out/app.env [--key DB_PASSWORD] [--port 8000] [--pid-file out/app.pid]
// --port 0 picks a free port; the app prints `listening on http://127.0.0.1:PORT` once it serves.
//
// SIGHUP uses sun.misc.Signal (module jdk.unsupported): not a standard API, but exported and
// working from JDK 8 to 21+. It does nothing under `java -Xrs`. See README.md.

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Instant;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.Map;
import java.util.concurrent.Executors;
import sun.misc.Signal;

public class App {
  /** The credential in use, replaced as a whole: readers never see half of a reload. */
  record State(String sha256, String loadedAt) {}

  private final Path config;
  private final String key;
  private volatile State state;
  private volatile int reloads;

  App(Path config, String key) {
    this.config = config;
    this.key = key;
  }

  static void log(String message) {
    System.err.println("[app " + Instant.now() + "] " + message);
  }

  /**
   * Read the file; on any problem keep the previous value (a missing or torn file must not take
   * the app down) and say why by file and key name only -- never a value. Synchronized: the
   * signal thread and main() may both call it.
   */
  synchronized boolean load() {
    Map<String, String> values;
    try {
      values = parseDotenv(Files.readString(config, StandardCharsets.UTF_8));
    } catch (NoSuchFileException e) {
      log(config + " does not exist yet; waiting for the reloader to render it");
      return false;
    } catch (IOException | IllegalArgumentException e) {
      log("cannot read " + config + " (" + e.getClass().getSimpleName() + "); keeping the previous value");
      return false;
    }
    String value = values.get(key);
    if (value == null) {
      log(config + " has no key " + key + "; keeping the previous value");
      return false;
    }
    String digest = sha256(value);
    boolean first = state == null;
    state = new State(digest, Instant.now().toString());
    if (!first) reloads++;
    log((first ? "loaded " : "reloaded ") + key + " from " + config + " (sha256 " + digest.substring(0, 12) + ")");
    return true;
  }

  /**
   * KEY=value lines; blank lines and # comments skipped; a value starting with a double quote
   * is a JSON string (what the shipped dotenv template writes), anything else is taken as is.
   * Errors never quote the line: it may hold a secret.
   */
  static Map<String, String> parseDotenv(String text) {
    Map<String, String> out = new HashMap<>();
    int lineNo = 0;
    for (String line : text.split("\n", -1)) {
      lineNo++;
      String l = line.strip();
      if (l.isEmpty() || l.startsWith("#")) continue;
      int eq = l.indexOf('=');
      if (eq <= 0) throw new IllegalArgumentException("line " + lineNo + " is not KEY=value");
      String k = l.substring(0, eq).strip();
      String v = l.substring(eq + 1).strip();
      out.put(k, v.startsWith("\"") ? jsonString(v, lineNo) : v);
    }
    return out;
  }

  /** Decode one JSON string literal (the whole of `s`). */
  static String jsonString(String s, int lineNo) {
    StringBuilder b = new StringBuilder();
    int i = 1;
    while (i < s.length()) {
      char c = s.charAt(i++);
      if (c == '"') {
        if (i != s.length()) break;
        return b.toString();
      }
      if (c != '\\') {
        b.append(c);
        continue;
      }
      if (i >= s.length()) break;
      char e = s.charAt(i++);
      switch (e) {
        case '"', '\\', '/' -> b.append(e);
        case 'b' -> b.append('\b');
        case 'f' -> b.append('\f');
        case 'n' -> b.append('\n');
        case 'r' -> b.append('\r');
        case 't' -> b.append('\t');
        case 'u' -> {
          if (i + 4 > s.length()) throw new IllegalArgumentException("line " + lineNo + ": bad \\u escape");
          b.append((char) Integer.parseInt(s.substring(i, i + 4), 16));
          i += 4;
        }
        default -> throw new IllegalArgumentException("line " + lineNo + ": bad escape");
      }
    }
    throw new IllegalArgumentException("line " + lineNo + ": unterminated or trailing text after a quoted value");
  }

  static String sha256(String value) {
    try {
      MessageDigest md = MessageDigest.getInstance("SHA-256");
      return HexFormat.of().formatHex(md.digest(value.getBytes(StandardCharsets.UTF_8)));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  void handle(HttpExchange ex) throws IOException {
    String path = ex.getRequestURI().getPath();
    int status;
    String body;
    State s = state;
    if (path.equals("/healthz")) {
      status = 200;
      body = "{\"ok\":true}";
    } else if (!path.equals("/fingerprint")) {
      status = 404;
      body = "{\"error\":\"not found\"}";
    } else if (s == null) {
      status = 503;
      body = "{\"error\":\"no credential loaded yet\"}";
    } else {
      status = 200;
      body = String.format(
          "{\"key\":\"%s\",\"sha256\":\"%s\",\"loadedAt\":\"%s\",\"reloads\":%d,\"pid\":%d}",
          key, s.sha256(), s.loadedAt(), reloads, ProcessHandle.current().pid());
    }
    byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
    ex.getResponseHeaders().set("content-type", "application/json");
    ex.sendResponseHeaders(status, bytes.length);
    try (OutputStream os = ex.getResponseBody()) {
      os.write(bytes);
    }
  }

  public static void main(String[] argv) throws Exception {
    Map<String, String> args = new HashMap<>(Map.of("--key", "DB_PASSWORD", "--port", "8000", "--host", "127.0.0.1"));
    for (int i = 0; i + 1 < argv.length; i += 2) args.put(argv[i], argv[i + 1]);
    if (!args.containsKey("--config")) {
      System.err.println("usage: java App.java --config FILE [--key KEY] [--port N] [--pid-file FILE]");
      System.exit(2);
    }
    App app = new App(Path.of(args.get("--config")), args.get("--key"));

    // (1) handle SIGHUP before anyone can find our pid: the JVM's default for SIGHUP is to run
    //     the shutdown hooks and exit. The handler runs on its own thread ("SIGHUP handler"),
    //     so reading a file there is fine.
    Signal.handle(new Signal("HUP"), sig -> app.load());
    // (2) the first load (503 until the reloader renders the file and signals us)
    app.load();
    HttpServer server = HttpServer.create(
        new InetSocketAddress(args.get("--host"), Integer.parseInt(args.get("--port"))), 0);
    server.createContext("/", ex -> {
      try {
        app.handle(ex);
      } finally {
        ex.close();
      }
    });
    server.setExecutor(Executors.newFixedThreadPool(2));
    server.start();
    // (3) only now publish the pid; SIGTERM (the JVM's default) runs this hook
    String pidFile = args.get("--pid-file");
    if (pidFile != null) {
      Path tmp = Path.of(pidFile + ".tmp");
      Files.writeString(tmp, ProcessHandle.current().pid() + "\n");
      Files.move(tmp, Path.of(pidFile), StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      server.stop(0);
      if (pidFile != null) {
        try {
          Files.deleteIfExists(Path.of(pidFile));
        } catch (IOException ignored) {
          // best effort
        }
      }
      log("stopped");
    }));
    System.out.println("listening on http://" + args.get("--host") + ":" + server.getAddress().getPort());
    System.out.flush();
  }
}
