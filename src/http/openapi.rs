//! The base of the OpenAPI document: its title and description and the
//! bearer security scheme. The composition root merges every capability's
//! routes into it.

use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "devx",
        description = "The data service of an AI developer platform. Errors are application/problem+json; lists are keyset-paginated ({items, next_cursor}).",
    ),
    modifiers(&BearerAuth),
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A session token from /api/auth/login or an API key (devx_...)"))
                    .build(),
            ),
        );
    }
}
