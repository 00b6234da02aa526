//! The JSON Schemas of the tools' arguments and results, generated from their Rust types and made
//! portable across clients' validators.

use rmcp::model::JsonObject;
use schemars::JsonSchema;
use serde_json::{Value, json};

/// The JSON Schema of an input (what a caller may send) or of an output (what we send: fields we
/// skip when empty are not required).
fn schema_of<T: JsonSchema>(serialize: bool) -> JsonObject {
    let settings = schemars::generate::SchemaSettings::draft2020_12();
    let settings = if serialize {
        settings.for_serialize()
    } else {
        settings.for_deserialize()
    };
    let schema = settings.into_generator().into_root_schema_for::<T>();
    let mut value = serde_json::to_value(schema).unwrap_or_else(|_| json!({"type": "object"}));
    portable(&mut value);
    if let Some(obj) = value.as_object_mut() {
        // Clients read `title` from the tool itself; the Rust type name is noise to them. Without
        // `$schema` the MCP default dialect (2020-12) applies, and validators that only know
        // draft-07 (Ajv's default, in the TypeScript SDK) do not refuse the schema.
        obj.remove("title");
        obj.remove("$schema");
    }
    match value {
        Value::Object(map) => map,
        _ => JsonObject::new(),
    }
}

/// Makes a generated schema portable across clients' validators: drops formats that are not in
/// the JSON Schema vocabulary (schemars' `uint32`, `int64`, `double`… make strict validators such
/// as Ajv refuse the whole schema) and shows optional fields as simply optional rather than
/// nullable (we never send or need `null`).
fn portable(value: &mut Value) {
    const STANDARD_FORMATS: &[&str] = &[
        "date-time",
        "date",
        "time",
        "duration",
        "email",
        "uri",
        "uri-reference",
        "uuid",
        "hostname",
        "ipv4",
        "ipv6",
        "regex",
    ];
    match value {
        Value::Object(obj) => {
            if obj
                .get("format")
                .and_then(Value::as_str)
                .is_some_and(|f| !STANDARD_FORMATS.contains(&f))
            {
                obj.remove("format");
            }
            if obj.get("default") == Some(&Value::Null) {
                obj.remove("default");
            }
            if let Some(Value::Array(types)) = obj.get("type") {
                let non_null: Vec<Value> = types
                    .iter()
                    .filter(|t| t.as_str() != Some("null"))
                    .cloned()
                    .collect();
                if non_null.len() == 1 {
                    obj.insert("type".into(), non_null[0].clone());
                }
            }
            // An optional struct comes out as `anyOf: [{$ref}, {type: null}]`: keep the one real
            // alternative, inlined, as for optional scalars above.
            if let Some(Value::Array(alternatives)) = obj.get("anyOf") {
                let real: Vec<Value> = alternatives
                    .iter()
                    .filter(|a| a.get("type").and_then(Value::as_str) != Some("null"))
                    .cloned()
                    .collect();
                if real.len() == 1
                    && real.len() < alternatives.len()
                    && let Value::Object(only) = &real[0]
                {
                    obj.remove("anyOf");
                    for (k, v) in only {
                        obj.entry(k.clone()).or_insert_with(|| v.clone());
                    }
                }
            }
            obj.values_mut().for_each(portable);
        }
        Value::Array(items) => items.iter_mut().for_each(portable),
        _ => {}
    }
}

/// The JSON Schema of a tool's arguments.
pub(super) fn input<T: JsonSchema>() -> JsonObject {
    schema_of::<T>(false)
}

/// The JSON Schema of a tool's structured result.
pub(super) fn output<T: JsonSchema>() -> JsonObject {
    schema_of::<T>(true)
}
