// A small Java TLS server (JDK 17, no dependencies) that serves from a PKCS#12 keystore written
// by infisical-reloader (a `pkcs12:` file) and takes a rotated certificate without a restart.
//
// It reads the keystore and its password file, serves TLS on 127.0.0.1, and on SIGHUP -- the
// reloader's `reload: { signal: HUP, pidFile: ... }` -- loads both again into a new SSLContext.
// New connections get the new certificate; connections already open keep theirs. A keystore
// that does not load (wrong password, torn file) keeps the previous context.
//
// Compile and run:
//   javac -d out examples/java-tls/TlsServer.java
//   java -cp out TlsServer --keystore tls/keystore.p12 --password-file tls/keystore.pass \
//        [--port 8443] [--pid-file app.pid]
// --port 0 picks a free port; the server prints `listening on 127.0.0.1:PORT` once it serves.
// Every connection gets one line, `hello from <subject>`, then the server closes it.
//
// It never prints the password or key material, only certificate subjects.
// SIGHUP uses sun.misc.Signal (module jdk.unsupported): exported and working from JDK 8 to 21+.

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyStore;
import java.security.cert.X509Certificate;
import java.util.Collections;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLSocket;
import sun.misc.Signal;

public class TlsServer {
  /** The context and the subject it serves, replaced as a whole on reload. */
  record Loaded(SSLContext context, String subject) {}

  private final Path keystore;
  private final Path passwordFile;
  private volatile Loaded loaded;

  TlsServer(Path keystore, Path passwordFile) {
    this.keystore = keystore;
    this.passwordFile = passwordFile;
  }

  static void log(String message) {
    System.out.println("[tls-server] " + message);
    System.out.flush();
  }

  /** Load the keystore into a new context; on failure keep the one in use. */
  synchronized boolean load() {
    try {
      char[] password = Files.readString(passwordFile, StandardCharsets.UTF_8).strip().toCharArray();
      KeyStore ks = KeyStore.getInstance("PKCS12");
      try (InputStream in = Files.newInputStream(keystore)) {
        ks.load(in, password);
      }
      String subject = "?";
      for (String alias : Collections.list(ks.aliases())) {
        if (ks.isKeyEntry(alias)) {
          subject = ((X509Certificate) ks.getCertificate(alias)).getSubjectX500Principal().getName();
          break;
        }
      }
      KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
      kmf.init(ks, password);
      SSLContext context = SSLContext.getInstance("TLS");
      context.init(kmf.getKeyManagers(), null, null);
      boolean first = loaded == null;
      loaded = new Loaded(context, subject);
      log((first ? "loaded " : "reloaded ") + subject);
      return true;
    } catch (Exception e) {
      log("cannot load " + keystore + " (" + e.getClass().getSimpleName() + "); keeping the previous keystore");
      return false;
    }
  }

  void serve(Socket raw) {
    Loaded current = loaded;
    try (SSLSocket tls = (SSLSocket) current.context().getSocketFactory()
        .createSocket(raw, null, raw.getPort(), true)) {
      tls.setUseClientMode(false);
      tls.startHandshake();
      OutputStream out = tls.getOutputStream();
      out.write(("hello from " + current.subject() + "\n").getBytes(StandardCharsets.UTF_8));
      out.flush();
    } catch (IOException e) {
      // a client that went away or failed the handshake: nothing to do
    }
  }

  public static void main(String[] args) throws Exception {
    Path keystore = null;
    Path passwordFile = null;
    Path pidFile = null;
    int port = 8443;
    for (int i = 0; i + 1 < args.length; i += 2) {
      switch (args[i]) {
        case "--keystore" -> keystore = Path.of(args[i + 1]);
        case "--password-file" -> passwordFile = Path.of(args[i + 1]);
        case "--pid-file" -> pidFile = Path.of(args[i + 1]);
        case "--port" -> port = Integer.parseInt(args[i + 1]);
        default -> throw new IllegalArgumentException("unknown option " + args[i]);
      }
    }
    if (keystore == null || passwordFile == null) {
      throw new IllegalArgumentException("--keystore and --password-file are required");
    }
    TlsServer server = new TlsServer(keystore, passwordFile);
    if (!server.load()) System.exit(1);
    Signal.handle(new Signal("HUP"), signal -> server.load());
    try (ServerSocket listener = new ServerSocket(port, 50, InetAddress.getLoopbackAddress())) {
      if (pidFile != null) Files.writeString(pidFile, ProcessHandle.current().pid() + "\n");
      log("listening on 127.0.0.1:" + listener.getLocalPort());
      while (true) {
        Socket raw = listener.accept();
        new Thread(() -> server.serve(raw)).start();
      }
    }
  }
}
