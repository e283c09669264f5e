package store.etl.zetasql;

import com.google.zetasql.Analyzer;
import com.google.zetasql.AnalyzerOptions;
import com.google.zetasql.LanguageOptions;
import com.google.zetasql.SimpleCatalog;
import com.google.zetasql.SimpleColumn;
import com.google.zetasql.SimpleTable;
import com.google.zetasql.ZetaSQLBuiltinFunctionOptions;
import com.google.zetasql.ZetaSQLOptions.ProductMode;
import com.google.zetasql.resolvedast.ResolvedNodes.ResolvedOutputColumn;
import com.google.zetasql.resolvedast.ResolvedNodes.ResolvedQueryStmt;
import com.google.zetasql.resolvedast.ResolvedNodes.ResolvedStatement;
import com.google.zetasql.toolkit.options.BigQueryLanguageOptions;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Analysis only, no state of rows: statements checked with BigQuery's own language options (the
 * features BigQuery enables, external product mode; the executing engine enables every feature)
 * against a catalog of table schemas the caller declares (tests/dbt: the warehouse's sources, then
 * each dbt model's output). A table `project.dataset.table` resolves however BigQuery admits it:
 * `project.dataset.table` as one quoted name or `project`.`dataset`.`table` as three (dbt's form).
 */
final class Analysis {
  private final LanguageOptions language = BigQueryLanguageOptions.get();
  private final SimpleCatalog root = new SimpleCatalog("bigquery");
  /** Registered tables by full name: the catalog each copy is in, and its name there. */
  private final Map<String, List<Map.Entry<SimpleCatalog, String>>> tables = new HashMap<>();

  /** Type names BigQuery accepts as aliases (its data-type reference) that ZetaSQL alone does not know. */
  private static final Map<String, String> TYPE_ALIASES = Map.of(
      "int", "INT64", "smallint", "INT64", "integer", "INT64", "bigint", "INT64", "tinyint", "INT64", "byteint", "INT64",
      "boolean", "BOOL", "decimal", "NUMERIC", "bigdecimal", "BIGNUMERIC");

  Analysis() {
    language.setProductMode(ProductMode.PRODUCT_EXTERNAL);
    root.addZetaSQLFunctionsAndTypes(new ZetaSQLBuiltinFunctionOptions(language));
    // dbt-bigquery renders dbt.type_bigint() as `bigint` and dbt.type_boolean() as `boolean`.
    TYPE_ALIASES.forEach((alias, type) -> root.addType(alias, Values.type(type)));
  }

  /** Declares (or replaces) the table `project.dataset.table` with these columns. */
  void define(String fullName, List<Engine.Field> fields) throws Engine.BqError {
    String[] path = fullName.split("\\.");
    if (path.length != 3) throw new Engine.BqError("invalid", "table name must be project.dataset.table: " + fullName);
    String key = fullName.toLowerCase(Locale.ROOT);
    for (Map.Entry<SimpleCatalog, String> e : tables.getOrDefault(key, List.of())) e.getKey().removeSimpleTable(e.getValue());
    List<Map.Entry<SimpleCatalog, String>> copies = new ArrayList<>();
    copies.add(register(root, fullName, fullName, fields));
    copies.add(register(child(child(root, path[0]), path[1]), path[2], fullName, fields));
    tables.put(key, copies);
  }

  private static Map.Entry<SimpleCatalog, String> register(SimpleCatalog in, String name, String fullName, List<Engine.Field> fields) {
    SimpleTable t = new SimpleTable(fullName);
    for (Engine.Field f : fields) t.addSimpleColumn(f.name(), f.type());
    in.addSimpleTable(name, t);
    return Map.entry(in, name);
  }

  private static SimpleCatalog child(SimpleCatalog parent, String name) {
    SimpleCatalog c = parent.getCatalog(name);
    return c != null ? c : parent.addNewSimpleCatalog(name);
  }

  /** The output columns of a query (none for another statement kind); a rejection carries the analyzer's message. */
  List<SimpleColumn> analyze(String sql) throws Engine.BqError {
    AnalyzerOptions options = new AnalyzerOptions();
    options.setLanguageOptions(language);
    options.setDefaultTimezone("UTC"); // BigQuery's default, as in Engine.options
    ResolvedStatement st;
    try {
      st = Analyzer.analyzeStatement(sql, options, root);
    } catch (RuntimeException e) {
      throw new Engine.BqError("invalidQuery", e.getMessage());
    }
    List<SimpleColumn> out = new ArrayList<>();
    if (st instanceof ResolvedQueryStmt q) {
      for (ResolvedOutputColumn c : q.getOutputColumnList()) out.add(new SimpleColumn("", c.getName(), c.getColumn().getType()));
    }
    return out;
  }
}
