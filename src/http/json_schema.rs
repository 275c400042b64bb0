//! Schemas that the keys of `#[schema(...)]` cannot write: the items of a
//! list or the keys of a map with rules of their own, any JSON value, a
//! value of several types. Each is declared with
//! [`json_schema!`](crate::json_schema!) as a type that exists only to be
//! named in `#[schema(value_type = ...)]`: it becomes a component of the
//! document, and the field that uses it keeps its doc comment as its
//! description.
//!
//! "Any value" lists every type rather than being `{}`, which utoipa's types
//! do not read back (the document is completed through them, see
//! [`openapi::finish`](super::openapi::finish)).
//!
//! Text the server trims is stated with [`NON_BLANK`], never with `\S`: the
//! document's regular expressions are ECMA-262's, whose `\s` is not the
//! Unicode White_Space that `str::trim` removes (U+0085 and U+FEFF differ).

use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};

/// Declares `pub enum Name {}`, a type with no values that stands for a
/// schema in the OpenAPI document (`#[schema(value_type = Name)]`, or
/// `Vec<Name>`, `Option<Name>`...), built by the expression given (anything
/// that converts into `RefOr<Schema>`, such as an `ObjectBuilder`).
#[macro_export]
macro_rules! json_schema {
    ($(#[$attr:meta])* $name:ident = $schema:expr;) => {
        $(#[$attr])*
        pub enum $name {}

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                $schema.into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

/// Contains a character that is not Unicode White_Space (what
/// [`str::trim`] removes): the pattern of text that must not be blank.
/// `#[schema(pattern = ...)]` takes only a literal, so there it is written
/// out.
pub const NON_BLANK: &str = r"[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]";

/// A string schema, for the items and keys of lists and maps.
pub fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

crate::json_schema! {
    /// Any JSON value, `null` included.
    AnyJson = ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([
            Type::Null,
            Type::Boolean,
            Type::Number,
            Type::String,
            Type::Array,
            Type::Object,
        ]))
        .description(Some("Any JSON value."));
}

crate::json_schema! {
    /// Any JSON value but `null`.
    AnyJsonButNull = ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Boolean, Type::Number, Type::String, Type::Array, Type::Object]))
        .description(Some("Any JSON value but `null`."));
}

/// For unit tests that hold a pattern the document states against the rule
/// the server checks.
#[cfg(test)]
pub mod testing {
    use serde_json::Value;

    /// The pattern at `pointer` (e.g. `/properties/email/pattern`) in the
    /// schema of `T`.
    pub fn pattern_of<T: utoipa::PartialSchema>(pointer: &str) -> regex::Regex {
        let schema = serde_json::to_value(T::schema()).unwrap();
        compile(&schema, pointer)
    }

    /// The pattern of query parameter `name` of `T`.
    pub fn param_pattern<T: utoipa::IntoParams>(name: &str) -> regex::Regex {
        let params = T::into_params(|| Some(utoipa::openapi::path::ParameterIn::Query));
        let param = params.into_iter().find(|p| p.name == name).unwrap();
        compile(&serde_json::to_value(param.schema).unwrap(), "/pattern")
    }

    fn compile(schema: &Value, pointer: &str) -> regex::Regex {
        let pattern = schema.pointer(pointer).and_then(Value::as_str);
        regex::Regex::new(pattern.unwrap_or_else(|| panic!("no pattern at {pointer} in {schema}"))).unwrap()
    }

    /// `count` strings of up to `max_len` characters from `alphabet`, the
    /// same ones every run.
    pub fn strings(alphabet: &str, count: usize, max_len: usize) -> Vec<String> {
        let chars: Vec<char> = alphabet.chars().collect();
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move |bound: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            usize::try_from(state % bound as u64).unwrap()
        };
        (0..count).map(|_| (0..next(max_len + 1)).map(|_| chars[next(chars.len())]).collect()).collect()
    }

    /// Asserts that `pattern` matches exactly the samples `rule` accepts.
    pub fn assert_agree<'a>(
        pattern: &regex::Regex,
        rule: impl Fn(&str) -> bool,
        samples: impl IntoIterator<Item = &'a str>,
    ) {
        for sample in samples {
            assert_eq!(pattern.is_match(sample), rule(sample), "{pattern} and the rule disagree on {sample:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use utoipa::PartialSchema;
    use utoipa::openapi::RefOr;
    use utoipa::openapi::schema::Schema;

    use super::*;

    #[test]
    fn non_blank_is_what_trim_keeps() {
        let non_blank = regex::Regex::new(&format!("^{NON_BLANK}$")).unwrap();
        for c in (0..=0x10FFFF).filter_map(char::from_u32) {
            assert_eq!(non_blank.is_match(c.encode_utf8(&mut [0; 4])), !c.is_whitespace(), "U+{:04X}", u32::from(c));
        }
    }

    #[test]
    fn the_schemas_read_back() {
        for schema in [AnyJson::schema(), AnyJsonButNull::schema()] {
            let json = serde_json::to_value(&schema).unwrap();
            let back: RefOr<Schema> = serde_json::from_value(json.clone()).unwrap();
            assert_eq!(serde_json::to_value(&back).unwrap(), json);
        }
    }
}
