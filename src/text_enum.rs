//! Closed sets of strings as Rust enums: statuses and kinds stored in `text`
//! columns with a named CHECK constraint, and settings with a fixed set of
//! values. Each is declared through [`text_enum!`](crate::text_enum!), which
//! holds the one derive list (its strings from `strum` and `serde`, the same
//! `snake_case` names for both) and adds `as_str`, `parse`, `ALL`, `FromSql`
//! and `ToSql`: a value the enum does not know is a decode error, never a
//! silent default.
//! A schema test compares every stored enum with its column's CHECK
//! constraint, both ways.

/// The error a [`text_enum!`](crate::text_enum!) type gives for a value it does not know.
#[derive(Debug)]
pub struct UnknownVariant {
    pub type_name: &'static str,
    pub value: String,
}

impl std::fmt::Display for UnknownVariant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} is not a known {} (the CHECK constraint and the enum disagree)", self.value, self.type_name)
    }
}

impl std::error::Error for UnknownVariant {}

/// Declares a closed set of strings as an enum: the one derive list (serde
/// and strum, both `snake_case`, and `utoipa::ToSchema`) plus `as_str`,
/// `parse`, `ALL`, and `FromSql`/`ToSql` for `text` columns.
///
/// Give the enum as you would write it; doc comments and attributes pass
/// through, so an enum adds derives (`#[derive(Default)]`), container
/// attributes (`#[strum(ascii_case_insensitive)]`) and per-variant names
/// (`#[strum(to_string = "verify-full")]` with the matching
/// `#[serde(rename = "verify-full")]`, so the API and the database agree).
///
/// ```ignore
/// text_enum! {
///     /// pending -> in_progress -> done.
///     pub enum TaskStatus { Pending, InProgress, Done }
/// }
/// ```
#[macro_export]
macro_rules! text_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $ty:ident {
            $($(#[$variant_meta:meta])* $variant:ident),+ $(,)?
        }
    ) => {
        #[derive(
            Debug,
            Clone,
            Copy,
            PartialEq,
            Eq,
            ::serde::Serialize,
            ::serde::Deserialize,
            ::utoipa::ToSchema,
            ::strum::EnumString,
            ::strum::IntoStaticStr,
            ::strum::VariantArray,
        )]
        #[serde(rename_all = "snake_case")]
        #[strum(serialize_all = "snake_case")]
        $(#[$meta])*
        $vis enum $ty {
            $($(#[$variant_meta])* $variant),+
        }

        impl $ty {
            /// Every value, in declaration order.
            pub const ALL: &'static [$ty] = <$ty as ::strum::VariantArray>::VARIANTS;

            /// The value as stored in the database and shown in the API.
            pub fn as_str(self) -> &'static str {
                self.into()
            }

            /// The value for its stored string, if there is one.
            pub fn parse(s: &str) -> Option<$ty> {
                s.parse().ok()
            }
        }

        impl<'a> ::tokio_postgres::types::FromSql<'a> for $ty {
            fn from_sql(
                ty: &::tokio_postgres::types::Type,
                raw: &'a [u8],
            ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
                let s = <&str as ::tokio_postgres::types::FromSql>::from_sql(ty, raw)?;
                s.parse::<$ty>().map_err(|_| {
                    Box::new($crate::text_enum::UnknownVariant { type_name: stringify!($ty), value: s.to_owned() })
                        as Box<dyn std::error::Error + Sync + Send>
                })
            }

            fn accepts(ty: &::tokio_postgres::types::Type) -> bool {
                <&str as ::tokio_postgres::types::FromSql>::accepts(ty)
            }
        }

        impl ::tokio_postgres::types::ToSql for $ty {
            fn to_sql(
                &self,
                ty: &::tokio_postgres::types::Type,
                out: &mut ::tokio_postgres::types::private::BytesMut,
            ) -> Result<::tokio_postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
                self.as_str().to_sql(ty, out)
            }

            fn accepts(ty: &::tokio_postgres::types::Type) -> bool {
                <&str as ::tokio_postgres::types::ToSql>::accepts(ty)
            }

            ::tokio_postgres::types::to_sql_checked!();
        }
    };
}

#[cfg(test)]
mod tests {
    crate::text_enum! {
        enum Sample {
            Pending,
            InProgress,
            #[strum(to_string = "on-hold", serialize = "paused")]
            #[serde(rename = "on-hold")]
            OnHold,
        }
    }

    #[test]
    fn a_text_enum_round_trips_its_strings_and_refuses_others() {
        use tokio_postgres::types::{FromSql, Type};
        assert_eq!(Sample::ALL, &[Sample::Pending, Sample::InProgress, Sample::OnHold]);
        assert_eq!(Sample::InProgress.as_str(), "in_progress");
        assert_eq!(Sample::parse("pending"), Some(Sample::Pending));
        assert_eq!(Sample::parse("Pending"), None);
        assert_eq!(Sample::parse("paused"), Some(Sample::OnHold));
        assert_eq!(Sample::from_sql(&Type::TEXT, b"in_progress").unwrap(), Sample::InProgress);
        let err = Sample::from_sql(&Type::TEXT, b"stopped").unwrap_err().to_string();
        assert!(err.contains("\"stopped\" is not a known Sample"), "{err}");
    }

    #[test]
    fn the_api_shows_the_stored_strings() {
        for value in Sample::ALL {
            assert_eq!(serde_json::to_value(value).unwrap(), value.as_str());
            assert_eq!(serde_json::from_value::<Sample>(value.as_str().into()).unwrap(), *value);
        }
    }
}
