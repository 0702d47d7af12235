//! The Azure Retail Prices API (`GET /api/retail/prices`), shaped like the real examples in
//! `shared/azure-examples/prices/`: an envelope with `BillingCurrency`, `Items`, `NextPageLink`
//! and `Count`; items with `retailPrice`, `armSkuName`, `armRegionName`, `meterName`
//! (`... Spot`, `... Low Priority`), `productName` (`... Windows`), `type` (`Consumption`,
//! `DevTestConsumption`, `Reservation` with a `reservationTerm`).
//!
//! Modelled: an OData `$filter` of `field eq 'value'` clauses joined by `and` over
//! `serviceName`, `serviceFamily`, `armRegionName`, `armSkuName`, `priceType`, `skuName`,
//! `meterName`, `productName`, `location`; `currencyCode` (USD and EUR); paging by `$skip`
//! with `NextPageLink` (the page size is [`crate::SandboxOptions::price_page_size`]; Azure's is
//! 100). A malformed filter answers 400 as Azure does. Not modelled: `contains`, `or`,
//! `savingsPlan`, the preview API version.

use serde_json::{Value, json};

use crate::http::{Ctx, Reply};
use crate::state::Shared;
use crate::vmsizes::{SIZES, VmSize};

/// Regions the catalog covers (with their `location` display names).
const REGIONS: &[(&str, &str)] = &[
    ("westeurope", "EU West"),
    ("northeurope", "EU North"),
    ("eastus", "US East"),
];

/// EUR per USD in the sandbox's catalog (a fixed rate, so tests can check numbers by hand).
const EUR_PER_USD: f64 = 0.9;

/// Linux on-demand USD per hour in `westeurope` for the sizes tests check by hand; other sizes
/// get `0.05 × vCPUs + 2.5 × GPUs`. Other regions cost 10% more.
const KNOWN_USD: &[(&str, f64)] = &[
    ("Standard_NC6s_v3", 3.06),
    ("Standard_NC4as_T4_v3", 0.526),
    ("Standard_D8s_v5", 0.384),
    ("Standard_D4s_v3", 0.192),
];

/// Sizes the catalog deliberately leaves out, so a missing price can be shown.
const UNPRICED: &[&str] = &["Standard_ND96asr_v4"];

/// The Spot price as a fraction of on-demand.
const SPOT_FACTOR: f64 = 0.2;

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

fn base_usd(size: &VmSize, region: &str) -> f64 {
    let base = KNOWN_USD
        .iter()
        .find(|(name, _)| *name == size.name)
        .map(|(_, p)| *p)
        .unwrap_or(0.05 * f64::from(size.cpus) + 2.5 * f64::from(size.gpus));
    if region == "westeurope" {
        base
    } else {
        base * 1.1
    }
}

/// `Standard_NC6s_v3` -> `NC6s v3` (Azure's meter and SKU names).
fn short_name(size: &str) -> String {
    size.trim_start_matches("Standard_").replace('_', " ")
}

/// Every item of the catalog in `currency`, in a stable order.
fn catalog(currency: &str) -> Vec<Value> {
    let rate = if currency == "EUR" { EUR_PER_USD } else { 1.0 };
    let mut items = Vec::new();
    for (region, location) in REGIONS {
        for size in SIZES.iter().filter(|s| !UNPRICED.contains(&s.name)) {
            let usd = base_usd(size, region);
            let short = short_name(size.name);
            let series = short.split(' ').next().unwrap_or_default().to_owned();
            let linux = format!("Virtual Machines {series} Series");
            let windows = format!("{linux} Windows");
            let rows: [(&str, String, &str, f64, Option<&str>); 6] = [
                ("Consumption", short.clone(), &linux, usd, None),
                (
                    "Consumption",
                    format!("{short} Spot"),
                    &linux,
                    usd * SPOT_FACTOR,
                    None,
                ),
                (
                    "Consumption",
                    format!("{short} Low Priority"),
                    &linux,
                    usd * SPOT_FACTOR,
                    None,
                ),
                ("Consumption", short.clone(), &windows, usd * 1.4, None),
                (
                    "DevTestConsumption",
                    format!("{short} Spot"),
                    &windows,
                    usd * SPOT_FACTOR,
                    None,
                ),
                (
                    "Reservation",
                    short.clone(),
                    &linux,
                    usd * 8760.0 * 0.6,
                    Some("1 Year"),
                ),
            ];
            for (i, (kind, meter, product, price, term)) in rows.into_iter().enumerate() {
                let price = round4(price * rate);
                let mut item = json!({
                    "currencyCode": currency,
                    "tierMinimumUnits": 0.0,
                    "retailPrice": price,
                    "unitPrice": price,
                    "armRegionName": region,
                    "location": location,
                    "effectiveStartDate": "2024-04-01T00:00:00Z",
                    "meterId": format!("sandbox-{region}-{}-{i}", size.name.to_ascii_lowercase()),
                    "meterName": meter,
                    "productId": format!("SANDBOX{}", series.to_ascii_uppercase()),
                    "skuId": format!("SANDBOX{}/{i:04}", series.to_ascii_uppercase()),
                    "productName": product,
                    "skuName": meter,
                    "serviceName": "Virtual Machines",
                    "serviceId": "DZH313Z7MMC8",
                    "serviceFamily": "Compute",
                    "unitOfMeasure": "1 Hour",
                    "type": kind,
                    "isPrimaryMeterRegion": true,
                    "armSkuName": size.name,
                });
                if let (Some(term), Some(obj)) = (term, item.as_object_mut()) {
                    obj.insert("reservationTerm".into(), json!(term));
                }
                items.push(item);
            }
        }
    }
    items
}

/// One `field eq 'value'` clause.
type Clause = (String, String);

/// Parses `a eq 'x' and b eq 'y'` (OData: `''` is a quote inside a value).
fn parse_filter(filter: &str) -> Result<Vec<Clause>, String> {
    let mut clauses = Vec::new();
    let mut rest = filter.trim();
    while !rest.is_empty() {
        let (field, after) = rest
            .split_once(char::is_whitespace)
            .ok_or_else(|| format!("expected `field eq 'value'` at {rest:?}"))?;
        let after = after.trim_start();
        let after = after
            .strip_prefix("eq ")
            .ok_or_else(|| format!("only `eq` is supported, at {after:?}"))?
            .trim_start();
        let mut chars = after.char_indices();
        if chars.next().map(|(_, c)| c) != Some('\'') {
            return Err(format!("expected a quoted value at {after:?}"));
        }
        let mut value = String::new();
        let mut end = None;
        let bytes: Vec<(usize, char)> = chars.collect();
        let mut i = 0;
        while i < bytes.len() {
            let (at, c) = bytes[i];
            if c == '\'' {
                if bytes.get(i + 1).map(|(_, c)| *c) == Some('\'') {
                    value.push('\'');
                    i += 2;
                    continue;
                }
                end = Some(at + 1);
                break;
            }
            value.push(c);
            i += 1;
        }
        let end = end.ok_or_else(|| format!("unterminated value in {after:?}"))?;
        clauses.push((field.to_owned(), value));
        rest = after[end..].trim_start();
        if rest.is_empty() {
            break;
        }
        rest = rest
            .strip_prefix("and ")
            .ok_or_else(|| format!("expected `and` at {rest:?}"))?
            .trim_start();
    }
    Ok(clauses)
}

/// The item field a filter name compares (`priceType` is the item's `type`).
fn field_of(name: &str) -> Option<&'static str> {
    Some(match name {
        "serviceName" => "serviceName",
        "serviceFamily" => "serviceFamily",
        "armRegionName" => "armRegionName",
        "armSkuName" => "armSkuName",
        "priceType" => "type",
        "skuName" => "skuName",
        "meterName" => "meterName",
        "productName" => "productName",
        "location" => "location",
        _ => return None,
    })
}

fn bad_request(message: String) -> Reply {
    Reply::json(
        400,
        json!({"Error": {"Code": "BadRequest", "Message": format!("Invalid OData parameters supplied: {message}")}}),
    )
}

/// `GET /api/retail/prices`.
pub fn handle(shared: &Shared, ctx: &Ctx) -> Reply {
    if ctx.method != axum::http::Method::GET {
        return Reply::json(405, json!({"Error": {"Code": "MethodNotAllowed"}}));
    }
    let currency = ctx
        .query
        .get("currencyCode")
        .map(|c| c.trim_matches('\'').to_ascii_uppercase())
        .unwrap_or_else(|| "USD".into());
    if currency != "USD" && currency != "EUR" {
        return bad_request(format!("currency {currency} is not served by the sandbox"));
    }
    let filter = ctx.query.get("$filter").cloned().unwrap_or_default();
    let clauses = match parse_filter(&filter) {
        Ok(c) => c,
        Err(e) => return bad_request(e),
    };
    let mut fields = Vec::new();
    for (name, value) in clauses {
        match field_of(&name) {
            Some(field) => fields.push((field, value)),
            None => return bad_request(format!("unknown field {name}")),
        }
    }
    let matching: Vec<Value> = catalog(&currency)
        .into_iter()
        .filter(|item| {
            fields
                .iter()
                .all(|(field, value)| item[*field].as_str() == Some(value.as_str()))
        })
        .collect();
    let skip: usize = match ctx.query.get("$skip").map(|s| s.parse()) {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => return bad_request("$skip must be a number".into()),
    };
    let size = shared.opts.price_page_size.max(1);
    let page: Vec<Value> = matching.iter().skip(skip).take(size).cloned().collect();
    let next = skip.saturating_add(size);
    let next_link = (next < matching.len()).then(|| {
        let mut url = format!(
            "{}/api/retail/prices?currencyCode='{currency}'",
            shared.base
        );
        if !filter.is_empty() {
            url.push_str("&$filter=");
            url.push_str(&encode(&filter));
        }
        url.push_str(&format!("&$skip={next}"));
        url
    });
    Reply::json(
        200,
        json!({
            "BillingCurrency": currency,
            "CustomerEntityId": "Default",
            "CustomerEntityType": "Retail",
            "Items": page,
            "NextPageLink": next_link,
            "Count": page.len(),
        }),
    )
}

/// Percent-encodes a query value (spaces as `%20`, as Azure's links do).
fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse_with_quotes_doubled() {
        let c = parse_filter("serviceName eq 'Virtual Machines' and meterName eq 'it''s'").unwrap();
        assert_eq!(
            c,
            vec![
                ("serviceName".to_owned(), "Virtual Machines".to_owned()),
                ("meterName".to_owned(), "it's".to_owned())
            ]
        );
        assert!(parse_filter("serviceName ne 'x'").is_err());
        assert!(parse_filter("serviceName eq 'x' or a eq 'b'").is_err());
        assert!(parse_filter("serviceName eq 'x").is_err());
    }

    #[test]
    fn catalog_items_have_the_fields_of_the_real_examples() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/azure-examples/prices");
        let example: Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join("RetailPrices_VirtualMachines_EUR.example.json"))
                .unwrap(),
        )
        .unwrap();
        let reservation: Value = serde_json::from_str(
            &std::fs::read_to_string(
                dir.join("RetailPrices_VirtualMachines_Reservation.example.json"),
            )
            .unwrap(),
        )
        .unwrap();
        let keys = |v: &Value| {
            let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
            k.sort();
            k
        };
        let items = catalog("EUR");
        let plain = items.iter().find(|i| i["type"] == "Consumption").unwrap();
        assert_eq!(keys(plain), keys(&example));
        let reserved = items.iter().find(|i| i["type"] == "Reservation").unwrap();
        assert_eq!(keys(reserved), keys(&reservation));
    }
}
