import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Properties;
import org.postgresql.PGStatement;

/**
 * The client-compatibility scenario with pgJDBC, through the proxy. Run in single-file source
 * mode: {@code java -cp /usr/share/java/postgresql.jar JdbcScenario.java}.
 *
 * <p>Environment: QO_HOST, QO_PORT, QO_TOKEN (the JWT, sent as the password), QO_DB (the
 * cluster), QO_TABLE; QO_USER (default app) lets it run straight against PostgreSQL.
 *
 * <p>Prints one JSON object per line: first {"version": ...}, then {"step", "ok", "error"?} for
 * each step. A failed step is reported and rolled back, so later steps still run.
 */
public class JdbcScenario {
  static final String TABLE = System.getenv("QO_TABLE");
  static final int[][] PREPARED_ROWS = {{4, 40}, {5, 50}, {6, 60}, {7, 70}};
  static final String[] PREPARED_NAMES = {"four", "five", "six", "seven"};
  static final String ALL_ROWS = "[1 one 10, 2 two 25, 4 four 40, 5 five 50, 6 six 60, 7 seven 70]";

  interface Step {
    void run(Connection conn) throws Exception;
  }

  public static void main(String[] args) throws Exception {
    emit("{\"version\": \"pgJDBC " + json(org.postgresql.util.DriverInfo.DRIVER_VERSION)
        + ", Java " + json(System.getProperty("java.version")) + "\"}");
    Connection conn;
    try {
      conn = connect();
    } catch (SQLException e) {
      fail("connect", e);
      return;
    }
    emit("{\"step\": \"connect\", \"ok\": true}");
    run(conn, "create", JdbcScenario::create);
    run(conn, "transaction", JdbcScenario::transaction);
    run(conn, "prepared", JdbcScenario::prepared);
    run(conn, "fetch-size", JdbcScenario::fetchSize);
    run(conn, "failure", JdbcScenario::failure);
    run(conn, "last-change", JdbcScenario::lastChange);
    conn.close();
  }

  static Connection connect() throws SQLException {
    Properties props = new Properties();
    props.setProperty("user", Objects.requireNonNullElse(System.getenv("QO_USER"), "app"));
    props.setProperty("password", System.getenv("QO_TOKEN"));
    props.setProperty("sslmode", "disable");
    props.setProperty("connectTimeout", "10");
    props.setProperty("socketTimeout", "30");
    String url = "jdbc:postgresql://" + System.getenv("QO_HOST") + ":" + System.getenv("QO_PORT")
        + "/" + System.getenv("QO_DB");
    return DriverManager.getConnection(url, props);
  }

  static void run(Connection conn, String name, Step step) {
    try {
      conn.setAutoCommit(true);
      step.run(conn);
      emit("{\"step\": \"" + name + "\", \"ok\": true}");
    } catch (Throwable e) {
      fail(name, e);
      try {
        if (!conn.getAutoCommit()) conn.rollback();
      } catch (SQLException ignored) {
        // The next step reports the broken connection.
      }
    }
  }

  static void create(Connection conn) throws SQLException {
    try (Statement st = conn.createStatement()) {
      st.execute("CREATE TABLE " + TABLE + " (id int PRIMARY KEY, name text NOT NULL, qty int NOT NULL)");
    }
  }

  static void transaction(Connection conn) throws SQLException {
    conn.setAutoCommit(false);
    try (PreparedStatement insert = conn.prepareStatement("INSERT INTO " + TABLE + " VALUES (?, ?, ?)")) {
      Object[][] rows = {{1, "one", 10}, {2, "two", 20}, {3, "three", 30}};
      for (Object[] row : rows) {
        insert.setInt(1, (Integer) row[0]);
        insert.setString(2, (String) row[1]);
        insert.setInt(3, (Integer) row[2]);
        check(insert.executeUpdate(), 1, "inserted");
      }
    }
    try (PreparedStatement update = conn.prepareStatement("UPDATE " + TABLE + " SET qty = ? WHERE id = ?")) {
      update.setInt(1, 25);
      update.setInt(2, 2);
      check(update.executeUpdate(), 1, "updated");
    }
    try (PreparedStatement delete = conn.prepareStatement("DELETE FROM " + TABLE + " WHERE id = ?")) {
      delete.setInt(1, 3);
      check(delete.executeUpdate(), 1, "deleted");
    }
    conn.commit();
    check(rows(conn), "[1 one 10, 2 two 25]", "rows after the transaction");
  }

  /** More executions than prepareThreshold (5): the driver switches to a named statement. */
  static void prepared(Connection conn) throws SQLException {
    try (PreparedStatement insert = conn.prepareStatement("INSERT INTO " + TABLE + " VALUES (?, ?, ?)")) {
      for (int i = 0; i < PREPARED_ROWS.length; i++) {
        insert.setInt(1, PREPARED_ROWS[i][0]);
        insert.setString(2, PREPARED_NAMES[i]);
        insert.setInt(3, PREPARED_ROWS[i][1]);
        check(insert.executeUpdate(), 1, "inserted");
      }
    }
    try (PreparedStatement select = conn.prepareStatement("SELECT name FROM " + TABLE + " WHERE id = ?")) {
      int[] ids = {1, 2, 4, 5, 6, 7, 1, 2, 4, 5, 6, 7};
      String[] names = {"one", "two", "four", "five", "six", "seven"};
      for (int i = 0; i < ids.length; i++) {
        select.setInt(1, ids[i]);
        try (ResultSet rs = select.executeQuery()) {
          check(rs.next(), true, "a row for id " + ids[i]);
          check(rs.getString(1), names[i % names.length], "name of id " + ids[i]);
          check(rs.next(), false, "one row for id " + ids[i]);
        }
      }
      check(select.unwrap(PGStatement.class).isUseServerPrepare(), true, "server-side prepare");
    }
    check(rows(conn), ALL_ROWS, "rows after the prepared inserts");
  }

  /** Autocommit off and a fetch size: the driver reads a portal with Execute row limits. */
  static void fetchSize(Connection conn) throws SQLException {
    conn.setAutoCommit(false);
    List<Integer> seen = new ArrayList<>();
    try (PreparedStatement select = conn.prepareStatement(
        "SELECT n FROM generate_series(1, ?) AS n ORDER BY n")) {
      select.setFetchSize(5);
      select.setInt(1, 23);
      try (ResultSet rs = select.executeQuery()) {
        while (rs.next()) seen.add(rs.getInt(1));
      }
    }
    try (Statement st = conn.createStatement()) {
      st.setFetchSize(5);
      try (ResultSet rs = st.executeQuery("SELECT id FROM " + TABLE + " ORDER BY id")) {
        while (rs.next()) seen.add(rs.getInt(1));
      }
    }
    conn.commit();
    List<Integer> expected = new ArrayList<>();
    for (int i = 1; i <= 23; i++) expected.add(i);
    expected.addAll(List.of(1, 2, 4, 5, 6, 7));
    check(seen, expected, "rows read 5 at a time");
  }

  static void failure(Connection conn) throws SQLException {
    conn.setAutoCommit(false);
    try (PreparedStatement insert = conn.prepareStatement("INSERT INTO " + TABLE + " VALUES (?, ?, ?)")) {
      insert.setInt(1, 1);
      insert.setString(2, "duplicate");
      insert.setInt(3, 0);
      insert.executeUpdate();
      throw new AssertionError("the duplicate key was accepted");
    } catch (SQLException e) {
      check(e.getSQLState(), "23505", "SQLSTATE of the duplicate key");
    }
    try (Statement st = conn.createStatement()) {
      st.executeQuery("SELECT 1");
      throw new AssertionError("a statement ran in a failed transaction");
    } catch (SQLException e) {
      check(e.getSQLState(), "25P02", "SQLSTATE in the failed transaction");
    }
    conn.rollback();
    check(rows(conn), ALL_ROWS, "rows after ROLLBACK");
    conn.commit();
  }

  static void lastChange(Connection conn) throws SQLException {
    try (PreparedStatement delete = conn.prepareStatement("DELETE FROM " + TABLE + " WHERE id = ?")) {
      delete.setInt(1, 7);
      check(delete.executeUpdate(), 1, "deleted");
    }
  }

  static String rows(Connection conn) throws SQLException {
    List<String> rows = new ArrayList<>();
    try (Statement st = conn.createStatement();
        ResultSet rs = st.executeQuery("SELECT id, name, qty FROM " + TABLE + " ORDER BY id")) {
      while (rs.next()) rows.add(rs.getInt(1) + " " + rs.getString(2) + " " + rs.getInt(3));
    }
    return rows.toString();
  }

  static void check(Object actual, Object expected, String what) {
    if (!Objects.equals(actual, expected)) {
      throw new AssertionError(what + ": expected " + expected + ", got " + actual);
    }
  }

  static void fail(String step, Throwable e) {
    String detail = e.getClass().getName() + ": " + e.getMessage();
    if (e instanceof SQLException sql && sql.getSQLState() != null) {
      detail += " (SQLSTATE " + sql.getSQLState() + ")";
    }
    emit("{\"step\": \"" + step + "\", \"ok\": false, \"error\": \"" + json(detail) + "\"}");
  }

  static String json(String text) {
    StringBuilder out = new StringBuilder();
    for (char c : String.valueOf(text).toCharArray()) {
      if (c == '"' || c == '\\') out.append('\\').append(c);
      else if (c < 0x20) out.append(String.format("\\u%04x", (int) c));
      else out.append(c);
    }
    return out.toString();
  }

  static void emit(String line) {
    System.out.println(line);
    System.out.flush();
  }
}
