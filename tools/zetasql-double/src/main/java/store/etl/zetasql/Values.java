package store.etl.zetasql;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonNull;
import com.google.gson.JsonObject;
import com.google.gson.JsonPrimitive;
import com.google.zetasql.ArrayType;
import com.google.zetasql.StructType;
import com.google.zetasql.Type;
import com.google.zetasql.TypeFactory;
import com.google.zetasql.Value;
import com.google.zetasql.ZetaSQLType.TypeKind;
import java.math.BigDecimal;
import java.math.RoundingMode;
import java.time.LocalDate;
import java.time.LocalDateTime;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** BigQuery's type names and JSON encodings <-> ZetaSQL types and values. */
final class Values {
  private Values() {}

  /** A value that does not fit its column or parameter type: BigQuery's reason 'invalid'. */
  static final class BadValue extends Exception {
    BadValue(String message) {
      super(message);
    }
  }

  static Type type(String bq) {
    switch (bq.toUpperCase()) {
      case "STRING": return TypeFactory.createSimpleType(TypeKind.TYPE_STRING);
      case "INT64": case "INTEGER": return TypeFactory.createSimpleType(TypeKind.TYPE_INT64);
      case "FLOAT64": case "FLOAT": return TypeFactory.createSimpleType(TypeKind.TYPE_DOUBLE);
      case "NUMERIC": return TypeFactory.createSimpleType(TypeKind.TYPE_NUMERIC);
      case "BIGNUMERIC": return TypeFactory.createSimpleType(TypeKind.TYPE_BIGNUMERIC);
      case "BOOL": case "BOOLEAN": return TypeFactory.createSimpleType(TypeKind.TYPE_BOOL);
      case "TIMESTAMP": return TypeFactory.createSimpleType(TypeKind.TYPE_TIMESTAMP);
      case "DATE": return TypeFactory.createSimpleType(TypeKind.TYPE_DATE);
      case "DATETIME": return TypeFactory.createSimpleType(TypeKind.TYPE_DATETIME);
      case "BYTES": return TypeFactory.createSimpleType(TypeKind.TYPE_BYTES);
      case "JSON": return TypeFactory.createSimpleType(TypeKind.TYPE_JSON);
      default: throw new IllegalArgumentException("type not supported by the double: " + bq);
    }
  }

  /** The type name BigQuery's REST API reports in a schema (legacy names, as the real service). */
  static String restName(Type t) {
    switch (t.getKind()) {
      case TYPE_STRING: return "STRING";
      case TYPE_INT64: return "INTEGER";
      case TYPE_DOUBLE: return "FLOAT";
      case TYPE_NUMERIC: return "NUMERIC";
      case TYPE_BIGNUMERIC: return "BIGNUMERIC";
      case TYPE_BOOL: return "BOOLEAN";
      case TYPE_TIMESTAMP: return "TIMESTAMP";
      case TYPE_DATE: return "DATE";
      case TYPE_DATETIME: return "DATETIME";
      case TYPE_BYTES: return "BYTES";
      case TYPE_JSON: return "JSON";
      case TYPE_STRUCT: return "RECORD";
      default: return t.getKind().name().replace("TYPE_", "");
    }
  }

  /** The schema field of a result column: arrays are REPEATED fields of their element type. */
  static JsonObject restField(String name, Type t) {
    JsonObject f = new JsonObject();
    f.addProperty("name", name);
    Type el = t.isArray() ? ((ArrayType) t).getElementType() : t;
    f.addProperty("type", restName(el));
    f.addProperty("mode", t.isArray() ? "REPEATED" : "NULLABLE");
    if (el.isStruct()) {
      JsonArray sub = new JsonArray();
      for (var sf : ((StructType) el).getFieldList()) sub.add(restField(sf.getName(), sf.getType()));
      f.add("fields", sub);
    }
    return f;
  }

  private static final Pattern TS = Pattern.compile(
      "(\\d{4})-(\\d{1,2})-(\\d{1,2})(?:[ T](\\d{1,2}):(\\d{2})(?::(\\d{2})(?:\\.(\\d{1,6})\\d*)?)?)?\\s*(Z|UTC|[+-]\\d{2}(?::?\\d{2})?)?");

  static long timestampMicros(String s) throws BadValue {
    Matcher m = TS.matcher(s.trim());
    if (!m.matches()) throw new BadValue("Invalid timestamp: '" + s + "'");
    try {
      LocalDateTime ldt = LocalDateTime.of(
          Integer.parseInt(m.group(1)), Integer.parseInt(m.group(2)), Integer.parseInt(m.group(3)),
          m.group(4) == null ? 0 : Integer.parseInt(m.group(4)), m.group(5) == null ? 0 : Integer.parseInt(m.group(5)),
          m.group(6) == null ? 0 : Integer.parseInt(m.group(6)));
      String zone = m.group(8);
      ZoneOffset off = zone == null || zone.equals("Z") || zone.equals("UTC") ? ZoneOffset.UTC
          : ZoneOffset.of(zone.length() == 3 ? zone + ":00" : zone.contains(":") ? zone : zone.substring(0, 3) + ":" + zone.substring(3));
      long secs = ldt.toEpochSecond(off);
      String frac = m.group(7) == null ? "" : m.group(7);
      long micros = frac.isEmpty() ? 0 : Long.parseLong((frac + "000000").substring(0, 6));
      return secs * 1_000_000L + micros;
    } catch (RuntimeException e) {
      throw new BadValue("Invalid timestamp: '" + s + "'");
    }
  }

  /** A JSON value (load job row, insertAll row, query parameter) as a value of type t. */
  static Value fromJson(JsonElement j, Type t, String what) throws BadValue {
    if (j == null || j.isJsonNull()) return Value.createNullValue(t);
    if (t.isArray()) {
      if (!j.isJsonArray()) throw new BadValue("Array specified for non-repeated field: " + what);
      List<Value> out = new ArrayList<>();
      for (JsonElement e : j.getAsJsonArray()) out.add(fromJson(e, ((ArrayType) t).getElementType(), what));
      return Value.createArrayValue((ArrayType) t, out);
    }
    if (!j.isJsonPrimitive()) throw new BadValue("This field: " + what + " is not a record.");
    JsonPrimitive p = j.getAsJsonPrimitive();
    String s = p.getAsString();
    try {
      switch (t.getKind()) {
        case TYPE_STRING:
          return Value.createStringValue(s);
        case TYPE_INT64:
          if (p.isBoolean() || !s.trim().matches("[+-]?\\d+")) throw new BadValue("Could not parse '" + s + "' as INT64 for field " + what);
          return Value.createInt64Value(Long.parseLong(s.trim()));
        case TYPE_DOUBLE:
          if (p.isBoolean()) throw new BadValue("Could not parse '" + s + "' as DOUBLE for field " + what);
          return Value.createDoubleValue(Double.parseDouble(s.trim()));
        case TYPE_NUMERIC: {
          if (p.isBoolean()) throw new BadValue("Invalid NUMERIC value: " + s + " Field: " + what);
          BigDecimal d = new BigDecimal(s.trim()).setScale(9, RoundingMode.HALF_UP);
          if (d.precision() - d.scale() > 29) throw new BadValue("Invalid NUMERIC value: " + s + " Field: " + what);
          return Value.createNumericValue(d.stripTrailingZeros());
        }
        case TYPE_BIGNUMERIC:
          return Value.createBigNumericValue(new BigDecimal(s.trim()));
        case TYPE_BOOL:
          if (p.isBoolean()) return Value.createBoolValue(p.getAsBoolean());
          if (s.equalsIgnoreCase("true") || s.equals("1")) return Value.createBoolValue(true);
          if (s.equalsIgnoreCase("false") || s.equals("0")) return Value.createBoolValue(false);
          throw new BadValue("Could not parse '" + s + "' as BOOL for field " + what);
        case TYPE_TIMESTAMP:
          if (p.isNumber()) return Value.createTimestampValueFromUnixMicros(Math.round(p.getAsDouble() * 1_000_000));
          return Value.createTimestampValueFromUnixMicros(timestampMicros(s));
        case TYPE_DATE:
          if (!s.trim().matches("\\d{4}-\\d{1,2}-\\d{1,2}")) throw new BadValue("Could not parse '" + s + "' as DATE for field " + what);
          return Value.createDateValue(LocalDate.parse(s.trim(), DateTimeFormatter.ofPattern("yyyy-M-d")));
        case TYPE_DATETIME:
          return Value.createDatetimeValue(LocalDateTime.parse(s.trim().replace(' ', 'T')));
        case TYPE_JSON:
          return Value.createJsonValue(s);
        default:
          throw new BadValue("type not supported by the double: " + t.getKind() + " (" + what + ")");
      }
    } catch (NumberFormatException | java.time.DateTimeException | ArithmeticException e) {
      throw new BadValue("Could not parse '" + s + "' as " + restName(t) + " for field " + what);
    }
  }

  /** A query parameter of the REST API: {parameterType: {type, arrayType}, parameterValue: {value, arrayValues}}. */
  static Type paramType(JsonObject pt) {
    String kind = pt.get("type").getAsString();
    if (kind.equals("ARRAY")) return TypeFactory.createArrayType(paramType(pt.getAsJsonObject("arrayType")));
    return type(kind);
  }

  static Value paramValue(JsonObject pv, Type t, String name) throws BadValue {
    if (pv == null) return Value.createNullValue(t);
    if (t.isArray()) {
      List<Value> out = new ArrayList<>();
      JsonArray av = pv.has("arrayValues") ? pv.getAsJsonArray("arrayValues") : new JsonArray();
      for (JsonElement e : av) out.add(paramValue(e.getAsJsonObject(), ((ArrayType) t).getElementType(), name));
      return Value.createArrayValue((ArrayType) t, out);
    }
    return fromJson(pv.has("value") ? pv.get("value") : JsonNull.INSTANCE, t, "@" + name);
  }

  /** A cell as BigQuery's REST API returns it ({"v": ...}): scalars as strings, TIMESTAMP as int64 microseconds. */
  static JsonElement rest(Value v) {
    if (v.isNull()) return JsonNull.INSTANCE;
    Type t = v.getType();
    switch (t.getKind()) {
      case TYPE_STRING: return new JsonPrimitive(v.getStringValue());
      case TYPE_INT64: return new JsonPrimitive(Long.toString(v.getInt64Value()));
      case TYPE_DOUBLE: return new JsonPrimitive(Double.toString(v.getDoubleValue()));
      case TYPE_NUMERIC: return new JsonPrimitive(plain(v.getNumericValue()));
      case TYPE_BIGNUMERIC: return new JsonPrimitive(plain(v.getBigNumericValue()));
      case TYPE_BOOL: return new JsonPrimitive(Boolean.toString(v.getBoolValue()));
      case TYPE_TIMESTAMP: return new JsonPrimitive(Long.toString(v.getTimestampUnixMicros()));
      case TYPE_DATE: return new JsonPrimitive(v.getLocalDateValue().toString());
      case TYPE_DATETIME: return new JsonPrimitive(v.getLocalDateTimeValue().toString());
      case TYPE_JSON: return new JsonPrimitive(v.getJsonValue());
      case TYPE_BYTES: return new JsonPrimitive(java.util.Base64.getEncoder().encodeToString(v.getBytesValue().toByteArray()));
      case TYPE_ARRAY: {
        JsonArray a = new JsonArray();
        for (Value e : v.getElementList()) a.add(cell(e));
        return a;
      }
      case TYPE_STRUCT: {
        JsonArray f = new JsonArray();
        for (Value e : v.getFieldList()) f.add(cell(e));
        JsonObject o = new JsonObject();
        o.add("f", f);
        return o;
      }
      default: return new JsonPrimitive("<" + t.getKind() + ">");
    }
  }

  static JsonObject cell(Value v) {
    JsonObject c = new JsonObject();
    c.add("v", rest(v));
    return c;
  }

  private static String plain(BigDecimal d) {
    BigDecimal s = d.stripTrailingZeros();
    return (s.scale() < 0 ? s.setScale(0) : s).toPlainString();
  }

  static String isoTimestamp(long micros) {
    return OffsetDateTime.ofInstant(java.time.Instant.ofEpochSecond(Math.floorDiv(micros, 1_000_000L), Math.floorMod(micros, 1_000_000L) * 1000L), ZoneOffset.UTC).toString();
  }
}
