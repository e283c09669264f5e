package store.etl.zetasql;

import com.google.gson.Gson;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.zetasql.SimpleColumn;
import com.google.zetasql.Type;
import com.google.zetasql.Value;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The engine of the executing BigQuery double: one JSON request per line on stdin, one JSON
 * reply per line on stdout ({"id", "ok": true, ...} or {"id", "ok": false, "reason", "message"}).
 * Usage: java -cp ... store.etl.zetasql.Main PROJECT_ID
 */
public final class Main {
  private Main() {}

  public static void main(String[] args) throws Exception {
    PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
    System.setOut(System.err); // library chatter must not reach the protocol stream
    Gson gson = new Gson();
    Engine engine = new Engine(args.length > 0 ? args[0] : "test-project");
    Lazy<Analysis> analysis = new Lazy<>(Analysis::new); // only the analysis-only ops pay for its catalog
    out.println("{\"ready\":true}");
    BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    for (String line; (line = in.readLine()) != null; ) {
      if (line.isBlank()) continue;
      JsonObject req = gson.fromJson(line, JsonObject.class);
      JsonObject reply;
      try {
        reply = handle(engine, analysis, req);
        reply.addProperty("ok", true);
      } catch (Engine.BqError e) {
        reply = new JsonObject();
        reply.addProperty("ok", false);
        reply.addProperty("reason", e.reason);
        reply.addProperty("message", e.getMessage());
        JsonArray rows = new JsonArray();
        for (String r : e.rowErrors) rows.add(r);
        reply.add("rowErrors", rows);
      } catch (RuntimeException e) {
        reply = new JsonObject();
        reply.addProperty("ok", false);
        reply.addProperty("reason", "internalError");
        reply.addProperty("message", "double: " + e);
        e.printStackTrace();
      }
      reply.add("id", req.get("id"));
      out.println(gson.toJson(reply));
    }
  }

  /** Built on first use. */
  private static final class Lazy<T> {
    private final java.util.function.Supplier<T> make;
    private T value;

    Lazy(java.util.function.Supplier<T> make) {
      this.make = make;
    }

    T get() {
      if (value == null) value = make.get();
      return value;
    }
  }

  private static JsonObject handle(Engine engine, Lazy<Analysis> analysis, JsonObject req) throws Engine.BqError {
    String op = req.get("op").getAsString();
    JsonObject r = new JsonObject();
    switch (op) {
      case "reset" -> engine.reset();
      case "createDataset" -> engine.createDataset(str(req, "dataset"));
      case "getDataset" -> {
        if (!engine.hasDataset(str(req, "dataset"))) throw new Engine.BqError("notFound", "Not found: Dataset " + str(req, "dataset"));
      }
      case "createTable" -> engine.createTable(str(req, "dataset"), str(req, "table"), fields(req.getAsJsonArray("fields")), false);
      case "getTable" -> {
        Engine.Table t = engine.table(str(req, "dataset"), str(req, "table"));
        r.add("fields", Engine.restSchema(t.fields));
        r.addProperty("numRows", Integer.toString(t.rows.size()));
      }
      case "listTables" -> {
        JsonArray names = new JsonArray();
        for (String n : engine.tableNames(str(req, "dataset"))) names.add(n);
        r.add("tables", names);
      }
      case "deleteTable" -> engine.deleteTable(str(req, "dataset"), str(req, "table"));
      case "load" -> {
        List<JsonObject> rows = new ArrayList<>();
        for (JsonElement e : req.getAsJsonArray("rows")) rows.add(e.getAsJsonObject());
        JsonArray f = req.has("fields") && !req.get("fields").isJsonNull() ? req.getAsJsonArray("fields") : null;
        int n = engine.load(str(req, "dataset"), str(req, "table"), f == null ? null : fields(f),
            str(req, "write"), "CREATE_IF_NEEDED".equals(str(req, "create")), rows);
        r.addProperty("rows", n);
      }
      case "query" -> {
        Map<String, Type> types = new LinkedHashMap<>();
        Map<String, Value> values = new LinkedHashMap<>();
        JsonArray params = req.has("params") ? req.getAsJsonArray("params") : new JsonArray();
        for (JsonElement e : params) {
          JsonObject p = e.getAsJsonObject();
          String name = p.get("name").getAsString();
          try {
            Type t = Values.paramType(p.getAsJsonObject("parameterType"));
            types.put(name, t);
            values.put(name, Values.paramValue(p.getAsJsonObject("parameterValue"), t, name));
          } catch (Values.BadValue | IllegalArgumentException ex) {
            throw new Engine.BqError("invalidQuery", "Invalid query parameter " + name + ": " + ex.getMessage());
          }
        }
        Engine.Result res = engine.run(str(req, "sql"), types, values);
        JsonArray schema = new JsonArray();
        for (int i = 0; i < res.columns().size(); i++) {
          SimpleColumn c = res.columns().get(i);
          // An unnamed column is f<i>_ in BigQuery's result schema.
          String name = c.getName().isEmpty() || c.getName().startsWith("$") ? "f" + i + "_" : c.getName();
          schema.add(Values.restField(name, c.getType()));
        }
        JsonArray rows = new JsonArray();
        for (List<Value> row : res.rows()) {
          JsonArray f = new JsonArray();
          for (Value v : row) f.add(Values.cell(v));
          JsonObject o = new JsonObject();
          o.add("f", f);
          rows.add(o);
        }
        r.add("fields", schema);
        r.add("rows", rows);
        r.addProperty("numDmlAffectedRows", Long.toString(res.dmlRows()));
      }
      // Analysis only (tests/dbt): BigQuery's language options, declared schemas, no rows.
      case "defineAnalysisTable" -> analysis.get().define(str(req, "table"), fields(req.getAsJsonArray("fields")));
      case "analyze" -> {
        JsonArray schema = new JsonArray();
        for (SimpleColumn c : analysis.get().analyze(str(req, "sql"))) schema.add(Values.restField(c.getName(), c.getType()));
        r.add("fields", schema);
      }
      default -> throw new Engine.BqError("invalid", "double: unknown op " + op);
    }
    return r;
  }

  private static String str(JsonObject o, String k) {
    return o.has(k) && !o.get(k).isJsonNull() ? o.get(k).getAsString() : null;
  }

  private static List<Engine.Field> fields(JsonArray a) throws Engine.BqError {
    List<Engine.Field> out = new ArrayList<>();
    for (JsonElement e : a) {
      JsonObject f = e.getAsJsonObject();
      try {
        Type t = Values.type(f.get("type").getAsString());
        if ("REPEATED".equals(str(f, "mode"))) t = com.google.zetasql.TypeFactory.createArrayType(t);
        out.add(new Engine.Field(f.get("name").getAsString(), t, "REQUIRED".equals(str(f, "mode"))));
      } catch (IllegalArgumentException ex) {
        throw new Engine.BqError("invalid", ex.getMessage());
      }
    }
    return out;
  }
}
