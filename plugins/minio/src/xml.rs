//! S3's XML documents as typed values, read and written by `quick-xml`'s serde support.
//! Elements the plugin does not use are ignored.

use serde::{Deserialize, Serialize};

/// `GET /` (ListBuckets).
#[derive(Debug, Deserialize)]
pub struct ListAllMyBucketsResult {
    #[serde(rename = "Buckets", default)]
    pub buckets: Buckets,
}

#[derive(Debug, Default, Deserialize)]
pub struct Buckets {
    #[serde(rename = "Bucket", default)]
    pub bucket: Vec<Bucket>,
}

#[derive(Debug, Deserialize)]
pub struct Bucket {
    #[serde(rename = "Name")]
    pub name: String,
}

/// `GET /BUCKET?list-type=2` (ListObjectsV2), one page.
#[derive(Debug, Deserialize)]
pub struct ListBucketResult {
    #[serde(rename = "IsTruncated", default)]
    pub is_truncated: bool,
    #[serde(rename = "NextContinuationToken", default)]
    pub next_continuation_token: Option<String>,
    #[serde(rename = "Contents", default)]
    pub contents: Vec<Object>,
}

#[derive(Debug, Deserialize)]
pub struct Object {
    #[serde(rename = "Key")]
    pub key: String,
    #[serde(rename = "LastModified", default)]
    pub last_modified: Option<String>,
    #[serde(rename = "Size", default)]
    pub size: u64,
}

/// An S3 error answer.
#[derive(Debug, Default, Deserialize)]
pub struct Error {
    #[serde(rename = "Code", default)]
    pub code: String,
    #[serde(rename = "Message", default)]
    pub message: String,
    #[serde(rename = "RequestId", default)]
    pub request_id: Option<String>,
}

/// The body of `POST /BUCKET?delete` (DeleteObjects), at most 1000 keys.
#[derive(Debug, Serialize)]
pub struct Delete {
    #[serde(rename = "Quiet")]
    pub quiet: bool,
    #[serde(rename = "Object")]
    pub objects: Vec<DeleteKey>,
}

#[derive(Debug, Serialize)]
pub struct DeleteKey {
    #[serde(rename = "Key")]
    pub key: String,
}

/// The answer of DeleteObjects: in quiet mode only the keys that failed.
#[derive(Debug, Deserialize)]
pub struct DeleteResult {
    #[serde(rename = "Error", default)]
    pub errors: Vec<DeleteError>,
}

#[derive(Debug, Deserialize)]
pub struct DeleteError {
    #[serde(rename = "Key", default)]
    pub key: String,
    #[serde(rename = "Code", default)]
    pub code: String,
    #[serde(rename = "Message", default)]
    pub message: String,
}

/// The body of `PUT /BUCKET` outside us-east-1.
#[derive(Debug, Serialize)]
pub struct CreateBucketConfiguration {
    #[serde(rename = "@xmlns")]
    pub xmlns: &'static str,
    #[serde(rename = "LocationConstraint")]
    pub location_constraint: String,
}

pub const S3_NAMESPACE: &str = "http://s3.amazonaws.com/doc/2006-03-01/";

/// Reads `text` as `T`.
pub fn parse<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, quick_xml::DeError> {
    quick_xml::de::from_str(text)
}

/// Writes `value` as the document element `root`.
pub fn write<T: Serialize>(root: &str, value: &T) -> Result<String, quick_xml::SeError> {
    quick_xml::se::to_string_with_root(root, value)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AWS's documented ListObjectsV2 answer (API Reference, ListObjectsV2, example 1), with a
    /// continuation token added.
    #[test]
    fn reads_a_list_objects_v2_page() {
        let page: ListBucketResult = parse(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>bucket</Name><Prefix/><KeyCount>205</KeyCount><MaxKeys>1000</MaxKeys>
  <IsTruncated>true</IsTruncated>
  <NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>
  <Contents>
    <Key>my-image &amp; co.jpg</Key>
    <LastModified>2009-10-12T17:50:30.000Z</LastModified>
    <ETag>&quot;fba9dede5f27731c9771645a39863328&quot;</ETag>
    <Size>434234</Size>
    <StorageClass>STANDARD</StorageClass>
  </Contents>
  <Contents><Key>b</Key><Size>1</Size></Contents>
</ListBucketResult>"#,
        )
        .unwrap();
        assert!(page.is_truncated);
        assert_eq!(
            page.next_continuation_token.as_deref(),
            Some("1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=")
        );
        assert_eq!(page.contents.len(), 2);
        assert_eq!(page.contents[0].key, "my-image & co.jpg");
        assert_eq!(page.contents[0].size, 434_234);
    }

    #[test]
    fn reads_errors_and_bucket_lists_and_writes_delete() {
        let error: Error = parse(
            "<Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message><BucketName>x</BucketName><RequestId>4442587FB7D0A2F9</RequestId></Error>",
        )
        .unwrap();
        assert_eq!(error.code, "NoSuchBucket");
        assert_eq!(error.request_id.as_deref(), Some("4442587FB7D0A2F9"));
        let list: ListAllMyBucketsResult = parse(
            "<ListAllMyBucketsResult><Owner><ID>1</ID></Owner><Buckets><Bucket><Name>a</Name><CreationDate>2019-12-11T23:32:47+00:00</CreationDate></Bucket><Bucket><Name>b</Name></Bucket></Buckets></ListAllMyBucketsResult>",
        )
        .unwrap();
        let names: Vec<&str> = list
            .buckets
            .bucket
            .iter()
            .map(|b| b.name.as_str())
            .collect();
        assert_eq!(names, ["a", "b"]);
        let empty: ListAllMyBucketsResult =
            parse("<ListAllMyBucketsResult><Buckets/></ListAllMyBucketsResult>").unwrap();
        assert!(empty.buckets.bucket.is_empty());
        let body = write(
            "Delete",
            &Delete {
                quiet: true,
                objects: vec![DeleteKey {
                    key: "a<&>b".into(),
                }],
            },
        )
        .unwrap();
        assert_eq!(
            body,
            "<Delete><Quiet>true</Quiet><Object><Key>a&lt;&amp;&gt;b</Key></Object></Delete>"
        );
    }
}
