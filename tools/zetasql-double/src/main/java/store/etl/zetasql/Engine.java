package store.etl.zetasql;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.zetasql.Analyzer;
import com.google.zetasql.AnalyzerOptions;
import com.google.zetasql.EvaluatorTableModifyResponse;
import com.google.zetasql.LanguageOptions;
import com.google.zetasql.Parser;
import com.google.zetasql.PreparedModify;
import com.google.zetasql.PreparedQuery;
import com.google.zetasql.SimpleCatalog;
import com.google.zetasql.SimpleColumn;
import com.google.zetasql.SimpleTable;
import com.google.zetasql.TableContent;
import com.google.zetasql.Type;
import com.google.zetasql.TypeFactory;
import com.google.zetasql.Value;
import com.google.zetasql.ZetaSQLBuiltinFunctionOptions;
import com.google.zetasql.ZetaSQLOptions.ProductMode;
import com.google.zetasql.ZetaSQLType.TypeKind;
import com.google.zetasql.parser.ASTNodes.ASTCreateTableStatement;
import com.google.zetasql.resolvedast.ResolvedCreateStatementEnums.CreateMode;
import com.google.zetasql.resolvedast.ResolvedNodes.ResolvedAddColumnAction;
import com.google.zetasql.resolvedast.ResolvedNodes.ResolvedAlterAction;
import com.google.zetasql.resolvedast.ResolvedNodes.ResolvedAlterTableStmt;
import com.google.zetasql.resolvedast.ResolvedNodes.ResolvedColumnDefinition;
import com.google.zetasql.resolvedast.ResolvedNodes.ResolvedCreateTableAsSelectStmt;
import com.google.zetasql.resolvedast.ResolvedNodes.ResolvedCreateTableStmt;
import com.google.zetasql.resolvedast.ResolvedNodes.ResolvedCreateTableStmtBase;
import com.google.zetasql.resolvedast.ResolvedNodes.ResolvedDeleteStmt;
import com.google.zetasql.resolvedast.ResolvedNodes.ResolvedDropStmt;
import com.google.zetasql.resolvedast.ResolvedNodes.ResolvedInsertStmt;
import com.google.zetasql.resolvedast.ResolvedNodes.ResolvedMergeStmt;
import com.google.zetasql.resolvedast.ResolvedNodes.ResolvedQueryStmt;
import com.google.zetasql.resolvedast.ResolvedNodes.ResolvedStatement;
import com.google.zetasql.resolvedast.ResolvedNodes.ResolvedUpdateStmt;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * The double's state (datasets, tables with schemas and rows) and every statement kind the
 * adapter sends, analyzed by ZetaSQL exactly as written and executed by its reference evaluator.
 * What the evaluator does not run (scripts, transactions, variables, MERGE, DDL) is carried out
 * here around statements it does run.
 */
final class Engine {
  /** A column of a stored table: BigQuery's name, type and mode (REQUIRED = not null). */
  record Field(String name, Type type, boolean required) {}

  static final class Table {
    final String dataset;
    final String name;
    final List<Field> fields;
    final List<List<Value>> rows;

    Table(String dataset, String name, List<Field> fields, List<List<Value>> rows) {
      this.dataset = dataset;
      this.name = name;
      this.fields = List.copyOf(fields);
      this.rows = rows;
    }

    Table withRows(List<List<Value>> newRows) {
      return new Table(dataset, name, fields, newRows);
    }
  }

  /** An error BigQuery would report: its reason ('invalidQuery', 'invalid', 'notFound', 'duplicate') and message. */
  static final class BqError extends Exception {
    final String reason;
    final List<String> rowErrors;

    BqError(String reason, String message) {
      this(reason, message, List.of());
    }

    BqError(String reason, String message, List<String> rowErrors) {
      super(message);
      this.reason = reason;
      this.rowErrors = rowErrors;
    }
  }

  record Result(List<SimpleColumn> columns, List<? extends List<Value>> rows, long dmlRows) {
    static final Result EMPTY = new Result(List.of(), List.of(), 0);
  }

  /** Every stored table has this hidden key column (a pseudo-column: not in SELECT *): the row's position, so DML results map back to rows. */
  static final String ROWID = "__rowid";

  private final String project;
  private final LanguageOptions language = new LanguageOptions();
  private final View keyed;
  private final View plain;
  private Set<String> datasets = new LinkedHashSet<>();
  private Map<String, Table> tables = new LinkedHashMap<>();

  Engine(String project) {
    this.project = project;
    language.enableMaximumLanguageFeatures();
    language.setSupportsAllStatementKinds();
    keyed = new View(true);
    plain = new View(false);
  }

  // ------------------------------------------------------------------ datasets and tables

  void reset() {
    datasets = new LinkedHashSet<>();
    tables = new LinkedHashMap<>();
  }

  void createDataset(String ds) throws BqError {
    if (!datasets.add(ds)) throw new BqError("duplicate", "Already Exists: Dataset " + project + ":" + ds);
  }

  boolean hasDataset(String ds) {
    return datasets.contains(ds);
  }

  void createTable(String ds, String name, List<Field> fields, boolean replace) throws BqError {
    needDataset(ds);
    String key = ds + "." + name;
    if (tables.containsKey(key) && !replace) throw new BqError("duplicate", "Already Exists: Table " + project + ":" + key);
    tables.put(key, new Table(ds, name, fields, new ArrayList<>()));
  }

  Table table(String ds, String name) throws BqError {
    needDataset(ds);
    Table t = tables.get(ds + "." + name);
    if (t == null) throw new BqError("notFound", "Not found: Table " + project + ":" + ds + "." + name);
    return t;
  }

  /** Names of a dataset's tables, in creation order (tables.list). */
  List<String> tableNames(String ds) throws BqError {
    needDataset(ds);
    List<String> out = new ArrayList<>();
    for (Table t : tables.values()) if (t.dataset.equals(ds)) out.add(t.name);
    return out;
  }

  void deleteTable(String ds, String name) throws BqError {
    table(ds, name);
    tables.remove(ds + "." + name);
  }

  private void needDataset(String ds) throws BqError {
    if (!datasets.contains(ds)) throw new BqError("notFound", "Not found: Dataset " + project + ":" + ds);
  }

  /**
   * Rows of a load job or insertAll, typed by `fields` (the job's schema) or the table's: all or
   * nothing, like a load job with no bad records allowed. WRITE_TRUNCATE replaces rows and schema.
   */
  int load(String ds, String name, List<Field> fields, String write, boolean createIfNeeded, List<JsonObject> rows) throws BqError {
    needDataset(ds);
    Table t = tables.get(ds + "." + name);
    if (t == null) {
      if (!createIfNeeded || fields == null) throw new BqError("notFound", "Not found: Table " + project + ":" + ds + "." + name);
      t = new Table(ds, name, fields, new ArrayList<>());
    }
    List<Field> schema = fields != null ? fields : t.fields;
    List<List<Value>> typed = new ArrayList<>();
    List<String> errors = new ArrayList<>();
    for (int i = 0; i < rows.size(); i++) {
      try {
        typed.add(typeRow(rows.get(i), schema));
      } catch (Values.BadValue e) {
        errors.add(i + ":" + e.getMessage());
      }
    }
    if (!errors.isEmpty()) {
      String first = errors.get(0);
      throw new BqError("invalid", "Error while reading data, error message: JSON table encountered too many errors, giving up. Rows: "
          + errors.size() + "; errors: 1. First error in row " + first.substring(0, first.indexOf(':')) + ": " + first.substring(first.indexOf(':') + 1), errors);
    }
    if ("WRITE_EMPTY".equals(write) && !t.rows.isEmpty()) throw new BqError("duplicate", "Already Exists: Table " + project + ":" + ds + "." + name);
    List<List<Value>> out = "WRITE_TRUNCATE".equals(write) ? new ArrayList<>() : new ArrayList<>(t.rows);
    out.addAll(typed);
    tables.put(ds + "." + name, new Table(ds, name, "WRITE_TRUNCATE".equals(write) ? schema : t.fields, out));
    return typed.size();
  }

  private static List<Value> typeRow(JsonObject row, List<Field> schema) throws Values.BadValue {
    Set<String> known = new TreeSet<>(String.CASE_INSENSITIVE_ORDER);
    for (Field f : schema) known.add(f.name());
    for (String k : row.keySet()) if (!known.contains(k)) throw new Values.BadValue("no such field: " + k + ".");
    List<Value> out = new ArrayList<>();
    for (Field f : schema) {
      JsonElement j = row.get(f.name());
      if ((j == null || j.isJsonNull()) && f.required()) throw new Values.BadValue("Missing required field: " + f.name() + ".");
      out.add(Values.fromJson(j, f.type(), f.name()));
    }
    return out;
  }

  // ------------------------------------------------------------------ queries and scripts

  /**
   * Runs a query or a script. Statements outside a transaction take effect one by one; a failure
   * inside BEGIN TRANSACTION ... COMMIT TRANSACTION undoes the whole transaction. The result is
   * that of the last statement when it is a query (BigQuery reports a script's last SELECT).
   */
  Result run(String sql, Map<String, Type> paramTypes, Map<String, Value> params) throws BqError {
    Map<String, Type> types = new LinkedHashMap<>(paramTypes);
    Map<String, Value> values = new LinkedHashMap<>(params);
    Set<String> variables = new LinkedHashSet<>();
    Map<String, Table> txStart = null;
    Result last = Result.EMPTY;
    long dml = 0;
    try {
      for (List<Script.Token> stmt : Script.split(sql)) {
        List<String> w = Script.words(stmt);
        String head = w.get(0);
        if (head.equals("BEGIN") && (w.size() == 1 || w.get(1).equals("TRANSACTION"))) {
          if (txStart != null) throw new BqError("invalidQuery", "Transaction is already in progress");
          txStart = new LinkedHashMap<>(tables);
          last = Result.EMPTY;
        } else if (head.equals("COMMIT")) {
          if (txStart == null) throw new BqError("invalidQuery", "COMMIT TRANSACTION without an active transaction");
          txStart = null;
          last = Result.EMPTY;
        } else if (head.equals("ROLLBACK")) {
          if (txStart == null) throw new BqError("invalidQuery", "ROLLBACK TRANSACTION without an active transaction");
          tables = txStart;
          txStart = null;
          last = Result.EMPTY;
        } else if (head.equals("DECLARE")) {
          declare(stmt, variables, types, values);
          last = Result.EMPTY;
        } else if (head.equals("SET")) {
          set(stmt, variables, types, values);
          last = Result.EMPTY;
        } else {
          last = statement(Script.text(stmt, variables), types, values);
          dml += last.dmlRows();
        }
      }
      if (txStart != null) throw new BqError("invalidQuery", "Transaction started but never committed: it was rolled back");
    } catch (BqError e) {
      if (txStart != null) tables = txStart;
      throw e;
    }
    return new Result(last.columns(), last.rows(), dml);
  }

  /** DECLARE a[, b] TYPE [DEFAULT expr]: the variables become parameters @__v_a of that type. */
  private void declare(List<Script.Token> stmt, Set<String> variables, Map<String, Type> types, Map<String, Value> values) throws BqError {
    String text = Script.text(stmt, variables).replaceFirst("(?is)^DECLARE\\s+", "");
    String[] parts = text.split("(?i)\\s+DEFAULT\\s+", 2);
    String[] names = parts[0].trim().split("\\s+", -1);
    String typeName = parts[0].trim().substring(parts[0].trim().lastIndexOf(' ') + 1);
    String nameList = parts[0].trim().substring(0, parts[0].trim().lastIndexOf(' '));
    Type t;
    try {
      t = Values.type(typeName);
    } catch (IllegalArgumentException e) {
      throw new BqError("invalidQuery", e.getMessage());
    }
    Value v = parts.length > 1 ? scalar("SELECT CAST((" + parts[1] + ") AS " + typeName + ")", types, values) : Value.createNullValue(t);
    for (String n : nameList.split(",")) {
      String name = n.trim().toLowerCase(Locale.ROOT);
      if (!variables.add(name)) throw new BqError("invalidQuery", "Variable '" + name + "' is already defined");
      types.put(Script.VAR_PREFIX + name, t);
      values.put(Script.VAR_PREFIX + name, v);
    }
    if (names.length == 0) throw new BqError("invalidQuery", "DECLARE without a name");
  }

  /** SET v = expr: the expression must have the variable's type (BigQuery coerces only literals). */
  private void set(List<Script.Token> stmt, Set<String> variables, Map<String, Type> types, Map<String, Value> values) throws BqError {
    String name = null;
    int eq = -1;
    boolean sawSet = false;
    for (int i = 0; i < stmt.size(); i++) {
      Script.Token t = stmt.get(i);
      if (!sawSet && t.kind() == Script.Kind.WORD) sawSet = true;
      else if (name == null && t.kind() == Script.Kind.WORD) name = t.text().toLowerCase(Locale.ROOT);
      else if (t.kind() == Script.Kind.PUNCT && t.text().equals("=")) {
        eq = i;
        break;
      }
    }
    if (name == null || eq < 0 || !variables.contains(name)) throw new BqError("invalidQuery", "Unrecognized variable in: " + Script.text(stmt, Set.of()));
    String expr = Script.text(stmt.subList(eq + 1, stmt.size()), variables);
    Type want = types.get(Script.VAR_PREFIX + name);
    Result r = statement("SELECT (" + expr + ") AS v", types, values);
    Type got = r.columns().get(0).getType();
    if (!got.equivalent(want)) {
      throw new BqError("invalidQuery", "Query error: Cannot coerce expression " + expr + " to type " + want.typeName(ProductMode.PRODUCT_EXTERNAL));
    }
    values.put(Script.VAR_PREFIX + name, r.rows().get(0).get(0));
  }

  private Value scalar(String sql, Map<String, Type> types, Map<String, Value> values) throws BqError {
    return statement(sql, types, values).rows().get(0).get(0);
  }

  /** One statement: analyzed by ZetaSQL (a rejection is the analyzer's message), then executed. */
  Result statement(String sql, Map<String, Type> types, Map<String, Value> values) throws BqError {
    AnalyzerOptions options = options(types);
    ResolvedStatement st;
    try {
      st = Analyzer.analyzeStatement(sql, options, keyed.sync());
    } catch (RuntimeException e) {
      throw new BqError("invalidQuery", e.getMessage());
    }
    if (st instanceof ResolvedQueryStmt) return query(sql, options, values);
    if (st instanceof ResolvedInsertStmt || st instanceof ResolvedUpdateStmt || st instanceof ResolvedDeleteStmt) {
      return new Result(List.of(), List.of(), modify(sql, options, values, st instanceof ResolvedInsertStmt ? plain : keyed));
    }
    if (st instanceof ResolvedMergeStmt m) {
      return new Result(List.of(), List.of(), new Merge(this, sql, options, values, tableOf(m.getTableScan().getTable().getName())).run());
    }
    if (st instanceof ResolvedCreateTableStmt || st instanceof ResolvedCreateTableAsSelectStmt) {
      createFromDdl(sql, (ResolvedCreateTableStmtBase) st, options, values);
      return Result.EMPTY;
    }
    if (st instanceof ResolvedAlterTableStmt a) {
      alterTable(a);
      return Result.EMPTY;
    }
    if (st instanceof ResolvedDropStmt d) {
      if (!d.getObjectType().equalsIgnoreCase("TABLE")) throw new BqError("invalidQuery", "DROP " + d.getObjectType() + " is not supported by the double");
      String[] dt = datasetAndTable(d.getNamePath());
      if (!tables.containsKey(dt[0] + "." + dt[1]) && d.getIsIfExists()) return Result.EMPTY;
      deleteTable(dt[0], dt[1]);
      return Result.EMPTY;
    }
    throw new BqError("invalidQuery", "statement kind not supported by the double: " + st.getClass().getSimpleName());
  }

  Result query(String sql, AnalyzerOptions options, Map<String, Value> values) throws BqError {
    try (PreparedQuery q = PreparedQuery.builder().setSql(sql).setAnalyzerOptions(options).setCatalog(keyed.sync()).setTablesContents(keyed.contents()).prepare()) {
      TableContent out = q.execute(values);
      return new Result(q.getColumns(), out.getTableData(), 0);
    } catch (RuntimeException e) {
      throw new BqError("invalidQuery", e.getMessage());
    }
  }

  /** INSERT / UPDATE / DELETE through PreparedModify; its rows map back to ours by the hidden row id. */
  private long modify(String sql, AnalyzerOptions options, Map<String, Value> values, View view) throws BqError {
    EvaluatorTableModifyResponse res;
    try (PreparedModify m = PreparedModify.builder().setSql(sql).setAnalyzerOptions(options).setCatalog(view.sync()).setTablesContents(view.contents()).prepare()) {
      res = m.execute(values);
    } catch (RuntimeException e) {
      throw new BqError("invalidQuery", e.getMessage());
    }
    Table t = tableOf(res.getTableName());
    int n = t.fields.size();
    int first = view.keyed ? 1 : 0;
    List<List<Value>> rows = new ArrayList<>(t.rows);
    Set<Integer> deleted = new TreeSet<>();
    List<List<Value>> inserted = new ArrayList<>();
    for (EvaluatorTableModifyResponse.Row r : res.getContent()) {
      switch (r.getOperation()) {
        case INSERT -> inserted.add(List.copyOf(r.getContent().subList(first, first + n)));
        case UPDATE -> rows.set((int) r.getOriginalPrimaryKeysValues().get(0).getInt64Value(), List.copyOf(r.getContent().subList(first, first + n)));
        case DELETE -> deleted.add((int) r.getOriginalPrimaryKeysValues().get(0).getInt64Value());
        default -> throw new BqError("invalidQuery", "unexpected DML result operation " + r.getOperation());
      }
    }
    List<List<Value>> out = new ArrayList<>();
    for (int i = 0; i < rows.size(); i++) if (!deleted.contains(i)) out.add(rows.get(i));
    out.addAll(inserted);
    replaceRows(t, out);
    return res.getContent().size();
  }

  /** New contents of a table, refused when a REQUIRED column would hold NULL. */
  void replaceRows(Table t, List<List<Value>> rows) throws BqError {
    for (List<Value> r : rows) {
      for (int i = 0; i < t.fields.size(); i++) {
        if (t.fields.get(i).required() && r.get(i).isNull()) {
          throw new BqError("invalidQuery", "Required field " + t.fields.get(i).name() + " cannot be null");
        }
      }
    }
    tables.put(t.dataset + "." + t.name, t.withRows(rows));
  }

  /**
   * ALTER TABLE ... ADD COLUMN [IF NOT EXISTS]: the only ALTER action served. As in BigQuery, an
   * added column is NULLABLE (NOT NULL is refused) and NULL in every existing row.
   */
  private void alterTable(ResolvedAlterTableStmt st) throws BqError {
    String[] dt = datasetAndTable(st.getNamePath());
    Table t = tables.get(dt[0] + "." + dt[1]);
    if (t == null && st.getIsIfExists()) return;
    if (t == null) throw new BqError("notFound", "Not found: Table " + project + ":" + dt[0] + "." + dt[1]);
    List<Field> fields = new ArrayList<>(t.fields);
    for (ResolvedAlterAction action : st.getAlterActionList()) {
      if (!(action instanceof ResolvedAddColumnAction add)) {
        throw new BqError("invalidQuery", "ALTER TABLE action not supported by the double: " + action.getClass().getSimpleName());
      }
      ResolvedColumnDefinition c = add.getColumnDefinition();
      boolean exists = fields.stream().anyMatch(f -> f.name().equalsIgnoreCase(c.getName()));
      if (exists && add.getIsIfNotExists()) continue;
      if (exists) throw new BqError("invalidQuery", "Column already exists: " + c.getName());
      if (c.getAnnotations() != null && c.getAnnotations().getNotNull()) {
        throw new BqError("invalidQuery", "Cannot add REQUIRED column " + c.getName() + " to table " + dt[0] + "." + dt[1]);
      }
      fields.add(new Field(c.getName(), c.getType(), false));
    }
    List<List<Value>> rows = new ArrayList<>();
    for (List<Value> r : t.rows) {
      List<Value> row = new ArrayList<>(r);
      for (int i = r.size(); i < fields.size(); i++) row.add(Value.createNullValue(fields.get(i).type()));
      rows.add(row);
    }
    tables.put(dt[0] + "." + dt[1], new Table(t.dataset, t.name, fields, rows));
  }

  private void createFromDdl(String sql, ResolvedCreateTableStmtBase st, AnalyzerOptions options, Map<String, Value> values) throws BqError {
    String[] dt = datasetAndTable(st.getNamePath());
    boolean exists = tables.containsKey(dt[0] + "." + dt[1]);
    if (exists && st.getCreateMode() == CreateMode.CREATE_IF_NOT_EXISTS) return;
    if (exists && st.getCreateMode() != CreateMode.CREATE_OR_REPLACE) throw new BqError("duplicate", "Already Exists: Table " + project + ":" + dt[0] + "." + dt[1]);
    List<Field> fields = new ArrayList<>();
    for (ResolvedColumnDefinition c : st.getColumnDefinitionList()) {
      fields.add(new Field(c.getName(), c.getType(), c.getAnnotations() != null && c.getAnnotations().getNotNull()));
    }
    List<List<Value>> rows = new ArrayList<>();
    if (st instanceof ResolvedCreateTableAsSelectStmt) {
      ASTCreateTableStatement ast = (ASTCreateTableStatement) Parser.parseStatement(sql, language);
      for (List<Value> r : query(slice(sql, ast.getQuery().getParseLocationRange().start(), ast.getQuery().getParseLocationRange().end()), options, values).rows()) {
        rows.add(List.copyOf(r));
      }
    }
    needDataset(dt[0]);
    Table t = new Table(dt[0], dt[1], fields, new ArrayList<>());
    tables.put(dt[0] + "." + dt[1], t);
    replaceRows(t, rows);
  }

  // ------------------------------------------------------------------ catalog

  LanguageOptions language() {
    return language;
  }

  AnalyzerOptions options(Map<String, Type> params) {
    AnalyzerOptions o = new AnalyzerOptions();
    o.setLanguageOptions(language);
    // BigQuery's default time zone is UTC (ZetaSQL's is America/Los_Angeles): a zone-less
    // TIMESTAMP literal or DATE(ts) must mean UTC, as in BigQuery.
    o.setDefaultTimezone("UTC");
    params.forEach(o::addQueryParameter);
    return o;
  }

  /** The catalog name of a table: `project.dataset.table`, one identifier, as the adapter writes it. */
  private String catalogName(Table t) {
    return project + "." + t.dataset + "." + t.name;
  }

  Table tableOf(String catalogName) throws BqError {
    String[] dt = datasetAndTable(List.of(catalogName));
    return table(dt[0], dt[1]);
  }

  private String[] datasetAndTable(List<String> path) throws BqError {
    String[] parts = String.join(".", path).split("\\.");
    if (parts.length < 2) throw new BqError("invalidQuery", "Table \"" + String.join(".", path) + "\" must be qualified with a dataset (e.g. dataset.table).");
    return new String[] {parts[parts.length - 2], parts[parts.length - 1]};
  }

  /**
   * One registered catalog. `keyed`: every table has the hidden row id as its first column and
   * primary key (UPDATE and DELETE results name the rows they change by it). The evaluator cannot
   * INSERT into a table keyed by a pseudo-column, so INSERTs run on a second catalog without it.
   */
  private final class View {
    final SimpleCatalog catalog = new SimpleCatalog("bigquery");
    final boolean keyed;
    final Map<String, SimpleTable> registered = new HashMap<>();
    final Map<String, List<Field>> registeredFields = new HashMap<>();

    View(boolean keyed) {
      this.keyed = keyed;
      catalog.addZetaSQLFunctionsAndTypes(new ZetaSQLBuiltinFunctionOptions(language));
    }

    /** Brings the catalog's tables in line with the stored schemas (only what changed is re-registered). */
    SimpleCatalog sync() {
      Map<String, Table> want = new HashMap<>();
      for (Table t : tables.values()) want.put(catalogName(t), t);
      for (String name : new ArrayList<>(registered.keySet())) {
        Table t = want.get(name);
        if (t == null || t.fields != registeredFields.get(name)) {
          catalog.removeSimpleTable(registered.remove(name));
          registeredFields.remove(name);
        }
      }
      for (Map.Entry<String, Table> e : want.entrySet()) {
        if (registered.containsKey(e.getKey())) continue;
        SimpleTable st = new SimpleTable(e.getKey());
        if (keyed) {
          // The row id first: the Java client reads a DML result's primary key with the first columns' types.
          st.addSimpleColumn(new SimpleColumn(e.getKey(), ROWID, TypeFactory.createSimpleType(TypeKind.TYPE_INT64), true, false));
          st.setPrimaryKey(List.of(0));
        }
        for (Field f : e.getValue().fields) st.addSimpleColumn(f.name(), f.type());
        catalog.addSimpleTable(e.getKey(), st);
        registered.put(e.getKey(), st);
        registeredFields.put(e.getKey(), e.getValue().fields);
      }
      return catalog;
    }

    /** Every table's rows (keyed: each with its position as the row id). */
    Map<String, TableContent> contents() {
      Map<String, TableContent> out = new HashMap<>();
      for (Table t : tables.values()) {
        List<List<Value>> rows = new ArrayList<>(t.rows.size());
        for (int i = 0; i < t.rows.size(); i++) {
          List<Value> r = new ArrayList<>(t.rows.get(i).size() + 1);
          if (keyed) r.add(Value.createInt64Value(i));
          r.addAll(t.rows.get(i));
          rows.add(r);
        }
        out.put(catalogName(t), TableContent.create(rows));
      }
      return out;
    }
  }

  static String slice(String sql, int start, int end) {
    byte[] b = sql.getBytes(StandardCharsets.UTF_8);
    return new String(b, start, end - start, StandardCharsets.UTF_8);
  }

  /** A table's schema as the REST API gives it. */
  static JsonArray restSchema(List<Field> fields) {
    JsonArray out = new JsonArray();
    for (Field f : fields) {
      JsonObject o = Values.restField(f.name(), f.type());
      o.addProperty("mode", f.required() ? "REQUIRED" : "NULLABLE");
      out.add(o);
    }
    return out;
  }
}
