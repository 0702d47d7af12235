//! AWS Signature Version 4 for the `sigv4` auth profile (S3 servers such as MinIO), through
//! AWS's own `aws-sigv4` crate.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SignatureLocation,
    SigningSettings, UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;

/// What the signer needs to know about a request; `headers` must include every header that
/// will be sent (the signer signs them all).
pub struct Unsigned<'a> {
    pub method: &'a str,
    pub url: &'a str,
    pub headers: Vec<(&'a str, &'a str)>,
    pub body: &'a [u8],
}

pub struct Keys<'a> {
    pub access_key: &'a str,
    pub secret_key: &'a str,
    pub region: &'a str,
    pub service: &'a str,
}

/// The longest validity S3 accepts for a presigned URL (7 days).
pub const MAX_PRESIGN: Duration = Duration::from_secs(7 * 24 * 3600);

/// Signing settings for `service`. S3 canonicalizes the path as sent (encoded once, never
/// normalized: a key may hold `//` or `./`), other services encode it twice and normalize it.
fn settings_for(service: &str) -> SigningSettings {
    let mut settings = SigningSettings::default();
    if service == "s3" {
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    }
    settings
}

/// Returns the headers to add (`authorization`, `x-amz-date`, `x-amz-content-sha256`).
pub fn signature_headers(
    request: &Unsigned<'_>,
    keys: &Keys<'_>,
    time: SystemTime,
) -> Result<Vec<(String, String)>, String> {
    let mut settings = settings_for(keys.service);
    // S3 requires the payload hash as a header.
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    let (instructions, _) = signing_instructions(
        request,
        SignableBody::Bytes(request.body),
        keys,
        time,
        settings,
    )?;
    Ok(instructions)
}

/// `request.url` with the query parameters of a presigned URL (`X-Amz-Algorithm`,
/// `X-Amz-Credential`, `X-Amz-Date`, `X-Amz-Expires`, `X-Amz-SignedHeaders`,
/// `X-Amz-Signature`), valid for `expires` (at most [`MAX_PRESIGN`]). The payload is unsigned,
/// as S3 presigned GETs are.
pub fn presigned_url(
    request: &Unsigned<'_>,
    keys: &Keys<'_>,
    time: SystemTime,
    expires: Duration,
) -> Result<String, String> {
    if expires.is_zero() || expires > MAX_PRESIGN {
        return Err(format!(
            "a presigned URL is valid from 1 s to 7 days, not {} s",
            expires.as_secs()
        ));
    }
    let mut settings = settings_for(keys.service);
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(expires);
    let (_, params) =
        signing_instructions(request, SignableBody::UnsignedPayload, keys, time, settings)?;
    let mut url = request.url.to_owned();
    let mut separator = if url.contains('?') { '&' } else { '?' };
    for (name, value) in params {
        url.push(separator);
        url.push_str(&name);
        url.push('=');
        url.extend(percent_encoding::utf8_percent_encode(&value, QUERY_VALUE));
        separator = '&';
    }
    Ok(url)
}

/// Everything but SigV4's unreserved characters (`A-Z a-z 0-9 - _ . ~`) is encoded.
const QUERY_VALUE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

type Instructions = (Vec<(String, String)>, Vec<(String, String)>);

/// The headers and query parameters that sign `request`.
fn signing_instructions(
    request: &Unsigned<'_>,
    body: SignableBody<'_>,
    keys: &Keys<'_>,
    time: SystemTime,
    settings: SigningSettings,
) -> Result<Instructions, String> {
    let identity = Credentials::new(
        keys.access_key,
        keys.secret_key,
        None,
        None,
        "deckhand-config",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(keys.region)
        .name(keys.service)
        .time(time)
        .settings(settings)
        .build()
        .map_err(|e| format!("sigv4 parameters: {e}"))?
        .into();
    let signable = SignableRequest::new(
        request.method,
        request.url,
        request.headers.iter().copied(),
        body,
    )
    .map_err(|e| format!("sigv4 request: {e}"))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| format!("sigv4 signing: {e}"))?
        .into_parts();
    let headers = instructions
        .headers()
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect();
    let query = instructions
        .params()
        .iter()
        .map(|(name, value)| ((*name).to_owned(), value.to_string()))
        .collect();
    Ok((headers, query))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AWS's published S3 example "GET Object" (Authenticating Requests: Using the
    /// Authorization Header, examples): the expected signature is from AWS's documentation.
    #[test]
    fn matches_the_aws_documented_get_object_example() {
        let time = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_369_353_600); // 2013-05-24T00:00:00Z
        let headers = signature_headers(
            &Unsigned {
                method: "GET",
                url: "https://examplebucket.s3.amazonaws.com/test.txt",
                headers: vec![
                    ("host", "examplebucket.s3.amazonaws.com"),
                    ("range", "bytes=0-9"),
                ],
                body: b"",
            },
            &Keys {
                access_key: "AKIAIOSFODNN7EXAMPLE",
                secret_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                region: "us-east-1",
                service: "s3",
            },
            time,
        )
        .unwrap();
        let auth = headers
            .iter()
            .find(|(name, _)| name == "authorization")
            .map(|(_, value)| value.as_str())
            .unwrap();
        assert_eq!(
            auth,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
             Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }

    /// AWS's published example of a presigned URL (Authenticating Requests: Using Query
    /// Parameters): the expected signature is from AWS's documentation.
    #[test]
    fn matches_the_aws_documented_presigned_url_example() {
        let time = SystemTime::UNIX_EPOCH + Duration::from_secs(1_369_353_600);
        let url = presigned_url(
            &Unsigned {
                method: "GET",
                url: "https://examplebucket.s3.amazonaws.com/test.txt",
                headers: vec![("host", "examplebucket.s3.amazonaws.com")],
                body: b"",
            },
            &example_keys(),
            time,
            Duration::from_secs(86_400),
        )
        .unwrap();
        assert!(
            url.starts_with("https://examplebucket.s3.amazonaws.com/test.txt?"),
            "{url}"
        );
        for part in [
            "X-Amz-Algorithm=AWS4-HMAC-SHA256",
            "X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request",
            "X-Amz-Date=20130524T000000Z",
            "X-Amz-Expires=86400",
            "X-Amz-SignedHeaders=host",
            "X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404",
        ] {
            assert!(url.contains(part), "{part} missing from {url}");
        }
        assert!(!url.contains(example_keys().secret_key));
    }

    #[test]
    fn presigned_urls_are_bounded_by_s3s_seven_days() {
        let request = Unsigned {
            method: "GET",
            url: "https://examplebucket.s3.amazonaws.com/test.txt",
            headers: vec![("host", "examplebucket.s3.amazonaws.com")],
            body: b"",
        };
        let now = SystemTime::now();
        assert!(presigned_url(&request, &example_keys(), now, MAX_PRESIGN).is_ok());
        let error = presigned_url(
            &request,
            &example_keys(),
            now,
            MAX_PRESIGN + Duration::from_secs(1),
        )
        .unwrap_err();
        assert!(error.contains("1 s to 7 days"), "{error}");
        assert!(presigned_url(&request, &example_keys(), now, Duration::ZERO).is_err());
    }

    fn example_keys() -> Keys<'static> {
        Keys {
            access_key: "AKIAIOSFODNN7EXAMPLE",
            secret_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            region: "us-east-1",
            service: "s3",
        }
    }
}
