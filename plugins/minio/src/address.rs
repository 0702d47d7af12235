//! Typed S3 addresses: a bucket name checked by S3's rules, an object key checked and
//! percent-encoded segment by segment, and the request URL built from them on an endpoint
//! (path-style or virtual-hosted). Nothing here is concatenated from user text unencoded.

use deckhand_cloud_names::NameRule;
use deckhand_plugin_sdk::PluginError;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::config::Endpoint;

/// SigV4's unreserved characters (`A-Z a-z 0-9 - _ . ~`) stay, everything else is encoded:
/// the server's canonical form, so the signature the host computes matches.
const S3_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// S3's limit on a key, in UTF-8 bytes.
const MAX_KEY_BYTES: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketName(String);

impl BucketName {
    /// Checks `name` by S3's bucket naming rules; the error quotes the rule.
    pub fn parse(name: &str, option: &str) -> Result<BucketName, PluginError> {
        NameRule::S3Bucket
            .check(name)
            .map_err(|e| PluginError::bad_input(option, e.to_string()))?;
        Ok(BucketName(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for BucketName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// An object key (or key prefix): 1-1024 bytes of UTF-8 without control characters, and no
/// `.` or `..` segment (URL parsers resolve those, so the request would name another key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectKey(String);

impl ObjectKey {
    pub fn parse(key: &str, option: &str) -> Result<ObjectKey, PluginError> {
        let bad = |why: &str| {
            PluginError::bad_input(
                option,
                format!(
                    "object key {key:?} cannot be used: {why} (keys are 1-1024 bytes of text without control characters, e.g. runs/2024/model.bin)"
                ),
            )
        };
        if key.is_empty() {
            return Err(bad("it is empty"));
        }
        if key.len() > MAX_KEY_BYTES {
            return Err(bad(&format!("it is {} bytes long", key.len())));
        }
        if key.chars().any(char::is_control) {
            return Err(bad("it contains a control character"));
        }
        if key.split('/').any(|s| s == "." || s == "..") {
            return Err(bad("it has a '.' or '..' segment"));
        }
        Ok(ObjectKey(key.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key as a URL path: each `/`-separated segment percent-encoded.
    fn encoded_path(&self) -> String {
        self.0
            .split('/')
            .map(|segment| utf8_percent_encode(segment, S3_ENCODE).to_string())
            .collect::<Vec<_>>()
            .join("/")
    }
}

/// `BUCKET` or `BUCKET/KEY-OR-PREFIX`, as `/minio ls` and `/minio share` take it.
pub fn split_target(
    text: &str,
    option: &str,
) -> Result<(BucketName, Option<ObjectKey>), PluginError> {
    let text = text.strip_prefix("s3://").unwrap_or(text);
    match text.split_once('/') {
        None => Ok((BucketName::parse(text, option)?, None)),
        Some((bucket, "")) => Ok((BucketName::parse(bucket, option)?, None)),
        Some((bucket, key)) => Ok((
            BucketName::parse(bucket, option)?,
            Some(ObjectKey::parse(key, option)?),
        )),
    }
}

/// Encodes a query parameter's name or value.
fn query_part(text: &str) -> String {
    utf8_percent_encode(text, S3_ENCODE).to_string()
}

impl Endpoint {
    /// The URL of the endpoint itself, a bucket, or an object, with `query` (names and values
    /// encoded; an empty value is written `name=`).
    pub fn url(
        &self,
        bucket: Option<&BucketName>,
        key: Option<&ObjectKey>,
        query: &[(&str, &str)],
    ) -> Result<String, PluginError> {
        let mut url = self.base.clone();
        let mut path = String::from("/");
        if let Some(bucket) = bucket {
            if self.path_style {
                path.push_str(bucket.as_str());
                path.push('/');
            } else {
                let host = self.base.host_str().unwrap_or_default();
                url.set_host(Some(&format!("{bucket}.{host}")))
                    .map_err(|e| {
                        PluginError::bad_input(
                            "bucket",
                            format!(
                                "bucket {bucket} cannot be a host name on endpoint {}: {e}",
                                self.name
                            ),
                        )
                    })?;
            }
        }
        if let Some(key) = key {
            path.push_str(&key.encoded_path());
        }
        // A bucket URL without a key has no trailing slash (`/bucket`), as S3 clients send it.
        if key.is_none() && path.len() > 1 {
            path.pop();
        }
        url.set_path(&path);
        if !query.is_empty() {
            let query = query
                .iter()
                .map(|(name, value)| format!("{}={}", query_part(name), query_part(value)))
                .collect::<Vec<_>>()
                .join("&");
            url.set_query(Some(&query));
        }
        Ok(url.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(path_style: bool) -> Endpoint {
        Endpoint {
            name: "lab".into(),
            base: url::Url::parse("http://10.0.0.4:9000").unwrap(),
            auth_profile: "minio".into(),
            path_style,
            region: None,
        }
    }

    #[test]
    fn keys_are_encoded_per_segment_and_queries_encoded() {
        let bucket = BucketName::parse("experiment-data", "bucket").unwrap();
        let key = ObjectKey::parse("runs/2024 q1/model+v2(ß).bin", "key").unwrap();
        assert_eq!(
            endpoint(true).url(Some(&bucket), Some(&key), &[]).unwrap(),
            "http://10.0.0.4:9000/experiment-data/runs/2024%20q1/model%2Bv2%28%C3%9F%29.bin"
        );
        // Virtual-hosted addressing puts the bucket in the host name: not on an IP address.
        let error = endpoint(false)
            .url(Some(&bucket), Some(&key), &[])
            .unwrap_err();
        assert!(
            error.message.contains("cannot be a host name"),
            "{}",
            error.message
        );
        let mut named = endpoint(false);
        named.base = url::Url::parse("https://s3.lab.example").unwrap();
        assert_eq!(
            named.url(Some(&bucket), Some(&key), &[]).unwrap(),
            "https://experiment-data.s3.lab.example/runs/2024%20q1/model%2Bv2%28%C3%9F%29.bin"
        );
        assert_eq!(
            endpoint(true)
                .url(
                    Some(&bucket),
                    None,
                    &[("list-type", "2"), ("continuation-token", "a/b+c=")]
                )
                .unwrap(),
            "http://10.0.0.4:9000/experiment-data?list-type=2&continuation-token=a%2Fb%2Bc%3D"
        );
        assert_eq!(
            endpoint(true).url(None, None, &[]).unwrap(),
            "http://10.0.0.4:9000/"
        );
    }

    #[test]
    fn targets_split_into_a_checked_bucket_and_key() {
        let (bucket, key) = split_target("data/runs/", "target").unwrap();
        assert_eq!(bucket.as_str(), "data");
        assert_eq!(key.unwrap().as_str(), "runs/");
        assert!(split_target("s3://data", "target").unwrap().1.is_none());
        for bad in [
            "Data/x",
            "ab",
            "data/../etc",
            "data/a/./b",
            "1.2.3.4/x",
            "data/a\nb",
        ] {
            let error = split_target(bad, "target").unwrap_err();
            assert_eq!(error.option.as_deref(), Some("target"), "{bad}");
        }
        let error = split_target("my_bucket/x", "target").unwrap_err();
        assert!(
            error.message.contains("S3 bucket names are 3-63"),
            "{}",
            error.message
        );
    }
}
