//! S3 requests through the host's HTTP service, signed by the host with the endpoint's `sigv4`
//! auth profile; answers parsed from S3's XML, failures reported with S3's error code, its
//! words and the request id.

use deckhand_plugin_sdk::abi::proto::{HostError, HttpRequest, HttpResponse};
use deckhand_plugin_sdk::{Ctx, ErrorCode, PluginError};

use crate::address::{BucketName, ObjectKey};
use crate::config::Endpoint;
use crate::xml;

/// Keys per ListObjectsV2 page and per DeleteObjects call (S3's maximum for both).
pub const PAGE: u32 = 1000;

/// Objects and bytes, summed page by page.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    pub objects: u64,
    pub bytes: u64,
}

impl Totals {
    pub fn add(&mut self, objects: u64, bytes: u64) {
        self.objects = self.objects.saturating_add(objects);
        self.bytes = self.bytes.saturating_add(bytes);
    }
}

pub struct S3<'a> {
    ctx: &'a Ctx,
    endpoint: &'a Endpoint,
}

/// What a request is about, for the words of its errors.
#[derive(Clone, Copy)]
struct Subject<'a> {
    bucket: Option<&'a BucketName>,
    key: Option<&'a ObjectKey>,
}

impl<'a> S3<'a> {
    pub fn new(ctx: &'a Ctx, endpoint: &'a Endpoint) -> S3<'a> {
        S3 { ctx, endpoint }
    }

    pub fn endpoint(&self) -> &Endpoint {
        self.endpoint
    }

    fn request(
        &self,
        method: &str,
        subject: Subject<'_>,
        query: &[(&str, &str)],
        headers: Vec<(String, String)>,
        body: Option<String>,
    ) -> Result<HttpResponse, PluginError> {
        let url = self.endpoint.url(subject.bucket, subject.key, query)?;
        let response = self
            .ctx
            .http(HttpRequest {
                method: method.into(),
                url,
                headers,
                body,
                auth_profile: Some(self.endpoint.auth_profile.clone()),
                timeout_ms: None,
            })
            .map_err(|e| self.unreachable(e))?;
        if response.status >= 300 {
            return Err(self.s3_error(&response, subject));
        }
        Ok(response)
    }

    /// A request that got no answer: the host names the cause (DNS, refused, TLS, timeout).
    pub fn unreachable(&self, error: HostError) -> PluginError {
        let endpoint = self.endpoint;
        let message = match error.code.as_str() {
            "unavailable" | "timeout" | "upstream" => format!(
                "S3 endpoint {} ({}) cannot be reached: {}",
                endpoint.name, endpoint.base, error.message
            ),
            _ => format!("S3 endpoint {}: {}", endpoint.name, error.message),
        };
        PluginError::from_host(error, message)
    }

    /// S3's error answer in words, with its code, request id and status.
    fn s3_error(&self, response: &HttpResponse, subject: Subject<'_>) -> PluginError {
        let parsed: xml::Error = xml::parse(&response.body).unwrap_or_default();
        let header_id = header(response, "x-amz-request-id").map(str::to_owned);
        let code = if parsed.code.is_empty() {
            // HEAD answers have no body: the status says it.
            match response.status {
                403 => "AccessDenied".to_owned(),
                404 if subject.key.is_some() => "NoSuchKey".to_owned(),
                404 => "NoSuchBucket".to_owned(),
                status => format!("HTTP {status}"),
            }
        } else {
            parsed.code.clone()
        };
        let profile = &self.endpoint.auth_profile;
        let endpoint = &self.endpoint.name;
        let bucket = subject.bucket.map(BucketName::as_str).unwrap_or("?");
        let (kind, words) = match code.as_str() {
            "NoSuchBucket" => (
                ErrorCode::NotFound,
                format!("there is no bucket {bucket} on endpoint {endpoint}"),
            ),
            "NoSuchKey" => (
                ErrorCode::NotFound,
                format!(
                    "there is no object {} in bucket {bucket}",
                    subject.key.map(ObjectKey::as_str).unwrap_or("?")
                ),
            ),
            "BucketNotEmpty" => (
                ErrorCode::Precondition,
                format!("bucket {bucket} is not empty"),
            ),
            "BucketAlreadyOwnedByYou" | "BucketAlreadyExists" => (
                ErrorCode::Conflict,
                format!("bucket {bucket} already exists on endpoint {endpoint}"),
            ),
            "AccessDenied" => (
                ErrorCode::Denied,
                format!(
                    "access denied: the keys of auth profile {profile} may not do this on endpoint {endpoint}"
                ),
            ),
            "SignatureDoesNotMatch" => (
                ErrorCode::Denied,
                format!(
                    "the server refused the signature: the secret key of auth profile {profile} is not the one endpoint {endpoint} has for its access key"
                ),
            ),
            "InvalidAccessKeyId" => (
                ErrorCode::Denied,
                format!(
                    "endpoint {endpoint} does not know the access key of auth profile {profile}"
                ),
            ),
            _ => (
                ErrorCode::Upstream,
                format!(
                    "endpoint {endpoint} refused the request: {}",
                    if parsed.message.is_empty() {
                        format!("HTTP {}", response.status)
                    } else {
                        parsed.message.clone()
                    }
                ),
            ),
        };
        let mut error = PluginError::new(kind, words);
        error.upstream_code = Some(code);
        error.request_id = parsed.request_id.or(header_id).filter(|id| !id.is_empty());
        error.status = Some(response.status);
        error
    }

    fn parse<T: serde::de::DeserializeOwned>(
        &self,
        what: &str,
        response: &HttpResponse,
    ) -> Result<T, PluginError> {
        xml::parse(&response.body).map_err(|e| {
            PluginError::new(
                ErrorCode::Protocol,
                format!(
                    "endpoint {} answered {what} with XML that cannot be read: {e}",
                    self.endpoint.name
                ),
            )
        })
    }

    pub fn list_buckets(&self) -> Result<Vec<xml::Bucket>, PluginError> {
        let response = self.request(
            "GET",
            Subject {
                bucket: None,
                key: None,
            },
            &[],
            Vec::new(),
            None,
        )?;
        let list: xml::ListAllMyBucketsResult = self.parse("ListBuckets", &response)?;
        Ok(list.buckets.bucket)
    }

    /// One ListObjectsV2 page of `bucket` under `prefix`.
    pub fn list_page(
        &self,
        bucket: &BucketName,
        prefix: Option<&ObjectKey>,
        token: Option<&str>,
        max_keys: u32,
    ) -> Result<xml::ListBucketResult, PluginError> {
        let max = max_keys.to_string();
        let mut query = vec![("list-type", "2"), ("max-keys", max.as_str())];
        if let Some(prefix) = prefix {
            query.push(("prefix", prefix.as_str()));
        }
        if let Some(token) = token {
            query.push(("continuation-token", token));
        }
        let response = self.request(
            "GET",
            Subject {
                bucket: Some(bucket),
                key: None,
            },
            &query,
            Vec::new(),
            None,
        )?;
        self.parse("ListObjectsV2", &response)
    }

    /// Calls `each` with every page of `bucket` under `prefix`, following continuation tokens;
    /// only one page is held at a time.
    pub fn for_each_page(
        &self,
        bucket: &BucketName,
        prefix: Option<&ObjectKey>,
        mut each: impl FnMut(&xml::ListBucketResult) -> Result<(), PluginError>,
    ) -> Result<(), PluginError> {
        let mut token: Option<String> = None;
        loop {
            if self.ctx.is_cancelled() {
                return Err(PluginError::new(ErrorCode::Cancelled, "cancelled"));
            }
            let page = self.list_page(bucket, prefix, token.as_deref(), PAGE)?;
            each(&page)?;
            match (page.is_truncated, page.next_continuation_token) {
                (true, Some(next)) if !next.is_empty() => token = Some(next),
                (true, _) => {
                    return Err(PluginError::new(
                        ErrorCode::Protocol,
                        format!(
                            "endpoint {} said the listing of {bucket} goes on but gave no continuation token",
                            self.endpoint.name
                        ),
                    ));
                }
                (false, _) => return Ok(()),
            }
        }
    }

    /// Objects and bytes of `bucket` under `prefix`, counted page by page.
    pub fn totals(
        &self,
        bucket: &BucketName,
        prefix: Option<&ObjectKey>,
    ) -> Result<Totals, PluginError> {
        let mut totals = Totals::default();
        let mut pages = 0u32;
        self.for_each_page(bucket, prefix, |page| {
            let bytes = page
                .contents
                .iter()
                .fold(0u64, |sum, o| sum.saturating_add(o.size));
            totals.add(page.contents.len() as u64, bytes);
            pages = pages.saturating_add(1);
            if pages > 1 {
                self.ctx.progress(format!(
                    "{bucket}: {} objects counted so far",
                    totals.objects
                ));
            }
            Ok(())
        })?;
        Ok(totals)
    }

    /// HEAD of the bucket: `false` when S3 says there is none.
    pub fn bucket_exists(&self, bucket: &BucketName) -> Result<bool, PluginError> {
        let head = self.request(
            "HEAD",
            Subject {
                bucket: Some(bucket),
                key: None,
            },
            &[],
            Vec::new(),
            None,
        );
        match head {
            Ok(_) => Ok(true),
            Err(e) if e.code == ErrorCode::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub fn create_bucket(&self, bucket: &BucketName) -> Result<(), PluginError> {
        let body = match &self.endpoint.region {
            Some(region) => Some(
                xml::write(
                    "CreateBucketConfiguration",
                    &xml::CreateBucketConfiguration {
                        xmlns: xml::S3_NAMESPACE,
                        location_constraint: region.clone(),
                    },
                )
                .map_err(|e| PluginError::new(ErrorCode::Protocol, e.to_string()))?,
            ),
            None => None,
        };
        self.request(
            "PUT",
            Subject {
                bucket: Some(bucket),
                key: None,
            },
            &[],
            Vec::new(),
            body,
        )
        .map(|_| ())
    }

    pub fn delete_bucket(&self, bucket: &BucketName) -> Result<(), PluginError> {
        self.request(
            "DELETE",
            Subject {
                bucket: Some(bucket),
                key: None,
            },
            &[],
            Vec::new(),
            None,
        )
        .map(|_| ())
    }

    /// Deletes every object of `bucket`, a page (≤ 1000 keys) per DeleteObjects call.
    pub fn delete_all(&self, bucket: &BucketName) -> Result<Totals, PluginError> {
        let mut deleted = Totals::default();
        loop {
            if self.ctx.is_cancelled() {
                return Err(PluginError::new(
                    ErrorCode::Cancelled,
                    format!("cancelled after deleting {} objects", deleted.objects),
                ));
            }
            // Always the first page: what was deleted is gone, so no token is needed.
            let page = self.list_page(bucket, None, None, PAGE)?;
            if page.contents.is_empty() {
                return Ok(deleted);
            }
            let bytes = page
                .contents
                .iter()
                .fold(0u64, |sum, o| sum.saturating_add(o.size));
            let body = xml::write(
                "Delete",
                &xml::Delete {
                    quiet: true,
                    objects: page
                        .contents
                        .iter()
                        .map(|o| xml::DeleteKey { key: o.key.clone() })
                        .collect(),
                },
            )
            .map_err(|e| PluginError::new(ErrorCode::Protocol, e.to_string()))?;
            let md5 = content_md5(&body);
            let response = self.request(
                "POST",
                Subject {
                    bucket: Some(bucket),
                    key: None,
                },
                &[("delete", "")],
                vec![
                    ("content-md5".into(), md5),
                    ("content-type".into(), "application/xml".into()),
                ],
                Some(body),
            )?;
            let result: xml::DeleteResult = self.parse("DeleteObjects", &response)?;
            if let Some(first) = result.errors.first() {
                return Err(PluginError::new(
                    ErrorCode::Upstream,
                    format!(
                        "{} objects were deleted, then {} keys could not be (first: {} — {} {})",
                        deleted.objects,
                        result.errors.len(),
                        first.key,
                        first.code,
                        first.message
                    ),
                ));
            }
            deleted.add(page.contents.len() as u64, bytes);
            self.ctx.progress(format!(
                "{bucket}: {} objects deleted so far",
                deleted.objects
            ));
        }
    }

    /// The object's size, or NoSuchKey / NoSuchBucket in words.
    pub fn head_object(&self, bucket: &BucketName, key: &ObjectKey) -> Result<u64, PluginError> {
        let response = self.request(
            "HEAD",
            Subject {
                bucket: Some(bucket),
                key: Some(key),
            },
            &[],
            Vec::new(),
            None,
        )?;
        Ok(header(&response, "content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }

    /// A GET URL of the object, presigned by the host for `expires_secs`.
    pub fn presign_get(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        expires_secs: u64,
    ) -> Result<String, PluginError> {
        let url = self.endpoint.url(Some(bucket), Some(key), &[])?;
        self.ctx
            .http_presign(
                HttpRequest {
                    method: "GET".into(),
                    url,
                    auth_profile: Some(self.endpoint.auth_profile.clone()),
                    ..Default::default()
                },
                expires_secs,
            )
            .map_err(|e| self.unreachable(e))
    }

    /// A request to a path of the endpoint itself (MinIO's health probes), answered whatever
    /// its status; `Err` only when no answer came.
    pub fn probe(&self, method: &str, path: &str) -> Result<HttpResponse, HostError> {
        let mut url = self.endpoint.base.clone();
        url.set_path(path);
        self.ctx.http(HttpRequest {
            method: method.into(),
            url: url.to_string(),
            auth_profile: Some(self.endpoint.auth_profile.clone()),
            ..Default::default()
        })
    }

    /// S3's error words for an answer `probe` got.
    pub fn refusal(&self, response: &HttpResponse) -> PluginError {
        self.s3_error(
            response,
            Subject {
                bucket: None,
                key: None,
            },
        )
    }
}

pub fn header<'r>(response: &'r HttpResponse, name: &str) -> Option<&'r str> {
    response
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Base64 of the body's MD5, as S3's `Content-MD5` header wants it.
fn content_md5(body: &str) -> String {
    use base64::Engine;
    use md5::Digest;
    base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(body.as_bytes()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn content_md5_is_base64_of_the_digest() {
        // RFC 1321's test vector "abc" → 900150983cd24fb0d6963f7d28e17f72.
        assert_eq!(super::content_md5("abc"), "kAFQmDzST7DWlj99KOF/cg==");
    }
}
