package store.etl.zetasql;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * A GoogleSQL script cut into statements at the top-level semicolons (strings, quoted names and
 * comments respected), and script variables turned into query parameters: the reference
 * evaluator runs single statements and knows no variables, so `stale` in `NOT stale` becomes
 * `@__v_stale`, typed as declared.
 */
final class Script {
  private Script() {}

  enum Kind { WORD, QUOTED, STRING, COMMENT, SPACE, PUNCT, PARAM }

  record Token(Kind kind, String text) {}

  static final String VAR_PREFIX = "__v_";

  static List<Token> lex(String sql) {
    List<Token> out = new ArrayList<>();
    int i = 0, n = sql.length();
    while (i < n) {
      char c = sql.charAt(i);
      int j = i + 1;
      Kind k;
      if (Character.isWhitespace(c)) {
        while (j < n && Character.isWhitespace(sql.charAt(j))) j++;
        k = Kind.SPACE;
      } else if (c == '-' && i + 1 < n && sql.charAt(i + 1) == '-' || c == '#') {
        while (j < n && sql.charAt(j) != '\n') j++;
        k = Kind.COMMENT;
      } else if (c == '/' && i + 1 < n && sql.charAt(i + 1) == '*') {
        int e = sql.indexOf("*/", i + 2);
        j = e < 0 ? n : e + 2;
        k = Kind.COMMENT;
      } else if (c == '`') {
        j = closeQuote(sql, i, "`");
        k = Kind.QUOTED;
      } else if (c == '\'' || c == '"') {
        String q = sql.startsWith(String.valueOf(c).repeat(3), i) ? String.valueOf(c).repeat(3) : String.valueOf(c);
        j = closeQuote(sql, i, q);
        k = Kind.STRING;
      } else if (c == '@' && i + 1 < n && sql.charAt(i + 1) != '@') {
        while (j < n && (Character.isLetterOrDigit(sql.charAt(j)) || sql.charAt(j) == '_')) j++;
        k = Kind.PARAM;
      } else if (Character.isLetterOrDigit(c) || c == '_') {
        while (j < n && (Character.isLetterOrDigit(sql.charAt(j)) || sql.charAt(j) == '_')) j++;
        // r'..', b'..', rb'..': a prefixed string literal.
        if (j < n && (sql.charAt(j) == '\'' || sql.charAt(j) == '"') && sql.substring(i, j).toLowerCase(Locale.ROOT).matches("r|b|rb|br")) {
          char qc = sql.charAt(j);
          String q = sql.startsWith(String.valueOf(qc).repeat(3), j) ? String.valueOf(qc).repeat(3) : String.valueOf(qc);
          j = closeQuote(sql, j, q);
          k = Kind.STRING;
        } else {
          k = Kind.WORD;
        }
      } else {
        k = Kind.PUNCT;
      }
      out.add(new Token(k, sql.substring(i, j)));
      i = j;
    }
    return out;
  }

  private static int closeQuote(String sql, int start, String q) {
    int j = start + q.length();
    while (j < sql.length()) {
      if (sql.charAt(j) == '\\' && q.length() == 1 && q.charAt(0) != '`') {
        j += 2;
        continue;
      }
      if (sql.startsWith(q, j)) return j + q.length();
      j++;
    }
    return sql.length();
  }

  /** The statements of a script, each as its tokens (without the semicolon), blank ones dropped. */
  static List<List<Token>> split(String sql) {
    List<List<Token>> out = new ArrayList<>();
    List<Token> cur = new ArrayList<>();
    for (Token t : lex(sql)) {
      if (t.kind() == Kind.PUNCT && t.text().equals(";")) {
        if (!blank(cur)) out.add(cur);
        cur = new ArrayList<>();
      } else {
        cur.add(t);
      }
    }
    if (!blank(cur)) out.add(cur);
    return out;
  }

  private static boolean blank(List<Token> ts) {
    return ts.stream().allMatch(t -> t.kind() == Kind.SPACE || t.kind() == Kind.COMMENT);
  }

  /** The significant words of a statement, upper-cased (to tell BEGIN, DECLARE, SET ... apart). */
  static List<String> words(List<Token> ts) {
    List<String> out = new ArrayList<>();
    for (Token t : ts) if (t.kind() != Kind.SPACE && t.kind() != Kind.COMMENT) out.add(t.text().toUpperCase(Locale.ROOT));
    return out;
  }

  /** The statement's text with every free reference to a script variable made a parameter. */
  static String text(List<Token> ts, Set<String> variables) {
    StringBuilder b = new StringBuilder();
    for (int i = 0; i < ts.size(); i++) {
      Token t = ts.get(i);
      if (t.kind() == Kind.WORD && variables.contains(t.text().toLowerCase(Locale.ROOT))
          && !neighbour(ts, i, -1).equals(".") && !neighbour(ts, i, 1).equals(".") && !neighbour(ts, i, 1).equals("(")
          && !neighbour(ts, i, -1).equalsIgnoreCase("AS")) {
        b.append('@').append(VAR_PREFIX).append(t.text().toLowerCase(Locale.ROOT));
      } else {
        b.append(t.text());
      }
    }
    return b.toString().trim();
  }

  private static String neighbour(List<Token> ts, int i, int step) {
    for (int j = i + step; j >= 0 && j < ts.size(); j += step) {
      Token t = ts.get(j);
      if (t.kind() != Kind.SPACE && t.kind() != Kind.COMMENT) return t.text();
    }
    return "";
  }
}
