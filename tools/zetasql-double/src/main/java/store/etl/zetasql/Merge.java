package store.etl.zetasql;

import com.google.zetasql.AnalyzerOptions;
import com.google.zetasql.Parser;
import com.google.zetasql.Value;
import com.google.zetasql.ZetaSQLOptions.ProductMode;
import com.google.zetasql.parser.ASTMergeActionEnums.ActionType;
import com.google.zetasql.parser.ASTMergeWhenClauseEnums.MatchType;
import com.google.zetasql.parser.ASTNode;
import com.google.zetasql.parser.ASTNodes.ASTIdentifier;
import com.google.zetasql.parser.ASTNodes.ASTMergeStatement;
import com.google.zetasql.parser.ASTNodes.ASTMergeWhenClause;
import com.google.zetasql.parser.ASTNodes.ASTUpdateItem;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

/**
 * BigQuery's MERGE, which the reference evaluator analyzes but does not execute. The statement
 * has already been analyzed exactly as written (that is what rejects a bad column or type);
 * here its parts (target, source, ON condition, WHEN clauses) are taken from the parse tree and
 * its effect is computed with SELECTs the evaluator runs, all against the table as it was before:
 * <ul>
 *   <li>matched pairs: which WHEN MATCHED clause applies (the first whose condition holds) and the
 *       new values; a target row matched by two source rows fails the statement;</li>
 *   <li>source rows matching no target row: the WHEN NOT MATCHED [BY TARGET] clause and the row to insert;</li>
 *   <li>target rows matching no source row: WHEN NOT MATCHED BY SOURCE.</li>
 * </ul>
 * The new contents replace the table only when every step succeeded (all or nothing).
 */
final class Merge {
  private record Clause(String condition, ActionType action, List<Integer> columns, List<String> values) {}

  private final Engine engine;
  private final String sql;
  private final AnalyzerOptions options;
  private final Map<String, Value> params;
  private final Engine.Table target;

  Merge(Engine engine, String sql, AnalyzerOptions options, Map<String, Value> params, Engine.Table target) {
    this.engine = engine;
    this.sql = sql;
    this.options = options;
    this.params = params;
    this.target = target;
  }

  long run() throws Engine.BqError {
    ASTMergeStatement ast = (ASTMergeStatement) Parser.parseStatement(sql, engine.language());
    String targetPath = text(ast.getTargetPath());
    List<ASTIdentifier> path = ast.getTargetPath().getNames();
    String alias = ast.getAlias() != null ? text(ast.getAlias().getIdentifier()) : text(path.get(path.size() - 1));
    String from = targetPath + " AS " + alias;
    String source = text(ast.getTableExpression());
    String on = "(" + text(ast.getMergeCondition()) + ")";
    List<Clause> matched = new ArrayList<>();
    List<Clause> bySource = new ArrayList<>();
    List<Clause> byTarget = new ArrayList<>();
    for (ASTMergeWhenClause w : ast.getWhenClauses().getClauseList()) {
      Clause c = clause(w);
      if (w.getMatchType() == MatchType.MATCHED) matched.add(c);
      else if (w.getMatchType() == MatchType.NOT_MATCHED_BY_SOURCE) bySource.add(c);
      else byTarget.add(c);
    }

    List<List<Value>> rows = new ArrayList<>(target.rows);
    TreeSet<Integer> deleted = new TreeSet<>();
    List<List<Value>> inserted = new ArrayList<>();
    long affected = 0;

    if (!matched.isEmpty()) {
      List<? extends List<Value>> pairs = select(alias + "." + Engine.ROWID + ", " + which(matched) + values(matched)
          + " FROM " + from + " JOIN " + source + " ON " + on);
      Map<Long, Integer> seen = new HashMap<>();
      for (List<Value> r : pairs) {
        if (seen.merge(r.get(0).getInt64Value(), 1, Integer::sum) > 1) {
          throw new Engine.BqError("invalidQuery", "UPDATE/MERGE must match at most one source row for each target row");
        }
      }
      affected += apply(pairs, matched, rows, deleted);
    }
    if (!bySource.isEmpty()) {
      affected += apply(select(alias + "." + Engine.ROWID + ", " + which(bySource) + values(bySource)
          + " FROM " + from + " WHERE NOT EXISTS (SELECT 1 FROM " + source + " WHERE " + on + ")"), bySource, rows, deleted);
    }
    if (!byTarget.isEmpty()) {
      for (List<Value> r : select("NULL, " + which(byTarget) + values(byTarget)
          + " FROM " + source + " WHERE NOT EXISTS (SELECT 1 FROM " + from + " WHERE " + on + ")")) {
        int k = (int) r.get(1).getInt64Value();
        if (k == 0) continue;
        List<Value> row = new ArrayList<>();
        for (Engine.Field f : target.fields) row.add(Value.createNullValue(f.type()));
        Clause c = byTarget.get(k - 1);
        for (int i = 0; i < c.columns().size(); i++) row.set(c.columns().get(i), r.get(offset(byTarget, k) + i));
        inserted.add(row);
        affected++;
      }
    }
    List<List<Value>> out = new ArrayList<>();
    for (int i = 0; i < rows.size(); i++) if (!deleted.contains(i)) out.add(rows.get(i));
    out.addAll(inserted);
    engine.replaceRows(target, out);
    return affected;
  }

  /** Applies UPDATE / DELETE clauses to the target rows selected as (rowid, clause, values...). */
  private long apply(List<? extends List<Value>> selected, List<Clause> clauses, List<List<Value>> rows, TreeSet<Integer> deleted) {
    long n = 0;
    for (List<Value> r : selected) {
      int k = (int) r.get(1).getInt64Value();
      if (k == 0) continue;
      int rowid = (int) r.get(0).getInt64Value();
      Clause c = clauses.get(k - 1);
      n++;
      if (c.action() == ActionType.DELETE) {
        deleted.add(rowid);
        continue;
      }
      List<Value> row = new ArrayList<>(rows.get(rowid));
      for (int i = 0; i < c.columns().size(); i++) row.set(c.columns().get(i), r.get(offset(clauses, k) + i));
      rows.set(rowid, row);
    }
    return n;
  }

  /** Where clause k's values start in a selected row (after rowid and the clause number). */
  private static int offset(List<Clause> clauses, int k) {
    int at = 2;
    for (int i = 0; i < k - 1; i++) at += clauses.get(i).values().size();
    return at;
  }

  /** The number (1-based) of the first clause whose condition holds, 0 for none. */
  private static String which(List<Clause> clauses) {
    StringBuilder b = new StringBuilder("CASE");
    for (int i = 0; i < clauses.size(); i++) b.append(" WHEN ").append(clauses.get(i).condition()).append(" THEN ").append(i + 1);
    return b.append(" ELSE 0 END").toString();
  }

  /** Each clause's new values, typed as their columns, computed only for the rows that take the clause. */
  private String values(List<Clause> clauses) {
    StringBuilder b = new StringBuilder();
    String w = which(clauses);
    for (int k = 0; k < clauses.size(); k++) {
      Clause c = clauses.get(k);
      for (int i = 0; i < c.values().size(); i++) {
        String type = target.fields.get(c.columns().get(i)).type().typeName(ProductMode.PRODUCT_EXTERNAL);
        b.append(", IF((").append(w).append(") = ").append(k + 1).append(", CAST((").append(c.values().get(i)).append(") AS ")
            .append(type).append("), NULL)");
      }
    }
    return b.toString();
  }

  private List<? extends List<Value>> select(String body) throws Engine.BqError {
    return engine.query("SELECT " + body, options, params).rows();
  }

  private Clause clause(ASTMergeWhenClause w) throws Engine.BqError {
    String cond = w.getSearchCondition() == null ? "TRUE" : "(" + text(w.getSearchCondition()) + ")";
    var a = w.getAction();
    List<Integer> cols = new ArrayList<>();
    List<String> vals = new ArrayList<>();
    if (a.getActionType() == ActionType.UPDATE) {
      for (ASTUpdateItem item : a.getUpdateItemList().getUpdateItems()) {
        if (item.getSetValue() == null) throw new Engine.BqError("invalidQuery", "nested UPDATE items are not supported by the double");
        cols.add(column(text(item.getSetValue().getPath())));
        vals.add(text(item.getSetValue().getValue()));
      }
    } else if (a.getActionType() == ActionType.INSERT) {
      if (a.getInsertRow() == null) throw new Engine.BqError("invalidQuery", "INSERT ROW in MERGE is not supported by the double");
      List<String> names = new ArrayList<>();
      if (a.getInsertColumnList() != null) for (ASTIdentifier id : a.getInsertColumnList().getIdentifiers()) names.add(text(id));
      else for (Engine.Field f : target.fields) names.add(f.name());
      for (String n : names) cols.add(column(n));
      for (var v : a.getInsertRow().getValues()) vals.add(text(v));
    }
    return new Clause(cond, a.getActionType(), cols, vals);
  }

  private int column(String name) throws Engine.BqError {
    String bare = name.replace("`", "");
    bare = bare.substring(bare.lastIndexOf('.') + 1);
    for (int i = 0; i < target.fields.size(); i++) if (target.fields.get(i).name().equalsIgnoreCase(bare)) return i;
    throw new Engine.BqError("invalidQuery", "Unrecognized name: " + name);
  }

  private String text(ASTNode n) {
    return Engine.slice(sql, n.getParseLocationRange().start(), n.getParseLocationRange().end());
  }
}
