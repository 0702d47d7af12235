//! AWS Signature Version 4 for the `sigv4` auth profile (S3 servers such as MinIO), through
//! AWS's own `aws-sigv4` crate.

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings, sign,
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

/// Returns the headers to add (`authorization`, `x-amz-date`, `x-amz-content-sha256`).
pub fn signature_headers(
    request: &Unsigned<'_>,
    keys: &Keys<'_>,
    time: SystemTime,
) -> Result<Vec<(String, String)>, String> {
    let identity = Credentials::new(
        keys.access_key,
        keys.secret_key,
        None,
        None,
        "deckhand-config",
    )
    .into();
    let mut settings = SigningSettings::default();
    // S3 requires the payload hash as a header.
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
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
        SignableBody::Bytes(request.body),
    )
    .map_err(|e| format!("sigv4 request: {e}"))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| format!("sigv4 signing: {e}"))?
        .into_parts();
    Ok(instructions
        .headers()
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect())
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
}
