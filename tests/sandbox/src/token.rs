//! Entra ID (Azure AD) token endpoint: `POST /{tenant}/oauth2/v2.0/token` (and the v1
//! `/{tenant}/oauth2/token` with `resource`), client-credentials
//! grant with a client secret or a federated client assertion; and bearer-token checks for ARM.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use serde_json::{Value, json};

use crate::http::{Ctx, Reply};
use crate::state::{Shared, lock};

/// The assertion type for federated credentials (workload identity).
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A token the endpoint handed out.
#[derive(Debug, Clone)]
pub struct Issued {
    /// Who asked.
    pub client_id: String,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap_or_default())
}

/// Issues a token for `client_id`; returns (token, lifetime in seconds).
pub fn issue(shared: &Shared, client_id: &str) -> (String, u64) {
    let now = Utc::now();
    let life = shared.opts.token_lifetime;
    let exp = now + ChronoDuration::from_std(life).unwrap_or(ChronoDuration::hours(1));
    let payload = json!({
        "aud": "https://management.azure.com/",
        "iss": format!("https://sts.windows.net/{}/", shared.opts.tenant_id),
        "iat": now.timestamp(), "nbf": now.timestamp(), "exp": exp.timestamp(),
        "appid": client_id, "tid": shared.opts.tenant_id, "oid": client_id,
        "sub": client_id, "idtyp": "app", "ver": "1.0",
        "jti": uuid::Uuid::new_v4().to_string(),
    });
    let token = format!(
        "{}.{}.{}",
        b64(&json!({"typ": "JWT", "alg": "RS256", "kid": "sandbox"})),
        b64(&payload),
        URL_SAFE_NO_PAD.encode(b"deckhand-sandbox-signature")
    );
    lock(&shared.tokens).insert(
        token.clone(),
        Issued {
            client_id: client_id.to_string(),
            expires_at: exp,
        },
    );
    (token, life.as_secs())
}

/// Mints a service-account style JWT usable as a federated client assertion.
pub fn mint_assertion(shared: &Shared, subject: &str) -> String {
    let now = Utc::now().timestamp();
    format!(
        "{}.{}.{}",
        b64(&json!({"alg": "RS256", "kid": "sandbox-oidc"})),
        b64(&json!({
            "aud": ["api://AzureADTokenExchange"],
            "iss": format!("{}/oidc/", shared.base),
            "sub": subject, "iat": now, "nbf": now, "exp": now + 3600,
        })),
        URL_SAFE_NO_PAD.encode(b"sig")
    )
}

fn decode_jwt(t: &str) -> Option<Value> {
    let mut it = t.split('.');
    let (_h, p, _s) = (it.next()?, it.next()?, it.next()?);
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p.trim_end_matches('=')).ok()?).ok()
}

fn aad_error(status: u16, error: &str, code: u32, text: &str) -> Reply {
    let trace = uuid::Uuid::new_v4().to_string();
    let corr = uuid::Uuid::new_v4().to_string();
    let ts = Utc::now().format("%Y-%m-%d %H:%M:%SZ").to_string();
    Reply::json(
        status,
        json!({
            "error": error,
            "error_description": format!("AADSTS{code}: {text} Trace ID: {trace} Correlation ID: {corr} Timestamp: {ts}"),
            "error_codes": [code],
            "timestamp": ts,
            "trace_id": trace,
            "correlation_id": corr,
            "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
        }),
    )
}

/// `/{tenant}/v2.0/.well-known/openid-configuration` (what MSAL-style clients discover first).
fn openid_configuration(shared: &Shared, tenant: &str) -> Reply {
    let b = &shared.base;
    Reply::json(
        200,
        json!({
            "issuer": format!("{b}/{tenant}/v2.0"),
            "token_endpoint": format!("{b}/{tenant}/oauth2/v2.0/token"),
            "authorization_endpoint": format!("{b}/{tenant}/oauth2/v2.0/authorize"),
            "jwks_uri": format!("{b}/{tenant}/discovery/v2.0/keys"),
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "tenant_region_scope": "EU",
        }),
    )
}

/// Serves the token endpoint.
pub fn handle(shared: &Shared, ctx: &Ctx) -> Reply {
    // /{tenant}/oauth2/v2.0/token (v1 `/oauth2/token` is not modelled)
    if ctx.seg_lc(1) == "v2.0"
        && ctx.seg_lc(2) == ".well-known"
        && ctx.seg_lc(3) == "openid-configuration"
    {
        return openid_configuration(shared, &ctx.segs[0]);
    }
    let v1 = ctx.segs.len() == 3 && ctx.seg_lc(2) == "token";
    if !v1 && (ctx.segs.len() != 4 || ctx.seg_lc(2) != "v2.0" || ctx.seg_lc(3) != "token") {
        return aad_error(
            404,
            "invalid_request",
            90011,
            "Request path is not served by the sandbox token endpoint.",
        );
    }
    if ctx.method != axum::http::Method::POST {
        return aad_error(
            405,
            "invalid_request",
            900561,
            "The endpoint only accepts POST requests.",
        );
    }
    let tenant = &ctx.segs[0];
    if !tenant.eq_ignore_ascii_case(&shared.opts.tenant_id) {
        return aad_error(
            400,
            "invalid_request",
            90002,
            &format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
            ),
        );
    }
    let f = ctx.form();
    let grant = f.get("grant_type").map(String::as_str).unwrap_or("");
    if grant != "client_credentials" {
        return aad_error(
            400,
            "unsupported_grant_type",
            70003,
            &format!("The app requested an unsupported grant type '{grant}'."),
        );
    }
    let target = if v1 { "resource" } else { "scope" };
    if f.get(target).is_none_or(|s| s.is_empty()) {
        return aad_error(
            400,
            "invalid_request",
            900144,
            &format!("The request body must contain the following parameter: '{target}'."),
        );
    }
    let client_id = f.get("client_id").cloned().unwrap_or_default();
    if client_id != shared.opts.client_id {
        return aad_error(
            400,
            "unauthorized_client",
            700016,
            &format!(
                "Application with identifier '{client_id}' was not found in the directory '{}'.",
                shared.opts.tenant_id
            ),
        );
    }
    if let Some(secret) = f.get("client_secret") {
        if secret != &shared.opts.client_secret {
            return aad_error(
                401,
                "invalid_client",
                7000215,
                &format!(
                    "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."
                ),
            );
        }
    } else if let Some(assertion) = f.get("client_assertion") {
        if f.get("client_assertion_type").map(String::as_str) != Some(JWT_BEARER) {
            return aad_error(
                400,
                "invalid_request",
                50027,
                "The client_assertion_type is not supported.",
            );
        }
        let Some(claims) = decode_jwt(assertion) else {
            return aad_error(
                400,
                "invalid_client",
                50027,
                "JWT token is invalid or malformed.",
            );
        };
        let aud_ok = match &claims["aud"] {
            Value::String(s) => s == "api://AzureADTokenExchange",
            Value::Array(a) => a.iter().any(|v| v == "api://AzureADTokenExchange"),
            _ => false,
        };
        if !aud_ok {
            return aad_error(
                400,
                "invalid_client",
                700212,
                "No matching federated identity record found for presented assertion audience.",
            );
        }
        if claims["exp"]
            .as_i64()
            .is_some_and(|e| e < Utc::now().timestamp())
        {
            return aad_error(
                400,
                "invalid_client",
                700024,
                "Client assertion is not within its valid time range.",
            );
        }
        let sub = claims["sub"].as_str().unwrap_or("");
        if claims["iss"].as_str().is_none() || !sub.starts_with("system:serviceaccount:") {
            return aad_error(
                400,
                "invalid_client",
                70021,
                &format!(
                    "No matching federated identity record found for presented assertion. Assertion Subject: '{sub}'."
                ),
            );
        }
    } else {
        return aad_error(
            401,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        );
    }
    let (token, secs) = issue(shared, &client_id);
    if v1 {
        // The v1 endpoint (ADAL, older SDKs) answers numbers as strings and names the resource.
        let now = Utc::now().timestamp();
        return Reply::json(
            200,
            json!({"token_type": "Bearer", "expires_in": secs.to_string(), "ext_expires_in": secs.to_string(),
                   "expires_on": (now + secs as i64).to_string(), "not_before": now.to_string(),
                   "resource": f.get("resource"), "access_token": token}),
        );
    }
    Reply::json(
        200,
        json!({"token_type": "Bearer", "expires_in": secs, "ext_expires_in": secs, "access_token": token}),
    )
}

fn unauthorized(shared: &Shared, code: &str, message: &str) -> Reply {
    Reply::json(401, json!({"error": {"code": code, "message": message}})).with(
        "WWW-Authenticate",
        format!(
            "Bearer authorization_uri=\"{}/{}\", error=\"invalid_token\", error_description=\"{}\"",
            shared.base, shared.opts.tenant_id, message
        ),
    )
}

/// Checks `Authorization: Bearer` for an ARM request.
pub fn check_bearer(shared: &Shared, ctx: &Ctx) -> Result<Issued, Reply> {
    let Some(h) = ctx.header("authorization") else {
        return Err(unauthorized(
            shared,
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is missing.",
        ));
    };
    let Some(token) = h
        .strip_prefix("Bearer ")
        .or_else(|| h.strip_prefix("bearer "))
    else {
        return Err(unauthorized(
            shared,
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is provided in an invalid format.",
        ));
    };
    check_token(shared, token.trim())
}

/// Checks a raw access token (ARM, or the ACR token exchange).
pub fn check_token(shared: &Shared, token: &str) -> Result<Issued, Reply> {
    let issued = lock(&shared.tokens).get(token).cloned();
    match issued {
        None => Err(unauthorized(
            shared,
            "InvalidAuthenticationToken",
            "The access token is invalid.",
        )),
        Some(i) if i.expires_at <= Utc::now() => {
            let fmt = "%m/%d/%Y %-I:%M:%S %p";
            Err(unauthorized(
                shared,
                "ExpiredAuthenticationToken",
                &format!(
                    "The access token expiry UTC time '{}' is earlier than current UTC time '{}'.",
                    i.expires_at.format(fmt),
                    Utc::now().format(fmt)
                ),
            ))
        }
        Some(i) => Ok(i),
    }
}
