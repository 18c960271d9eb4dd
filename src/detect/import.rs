//! Importers for the IP-range files cloud providers publish, read in their native formats so
//! a user refreshes a pack by downloading the official file again.

use serde::Deserialize;
use serde_json::Value;
use std::borrow::Cow;

/// One range from a provider file, with what the publisher says about it. Borrowed from the
/// file where the JSON allows (the big AWS and Azure files load without a copy per string).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range<'a> {
    pub cidr: Cow<'a, str>,
    pub service: Cow<'a, str>,
    pub region: Cow<'a, str>,
}

#[derive(Deserialize)]
struct Aws<'a> {
    #[serde(borrow)]
    prefixes: Vec<AwsPrefix<'a>>,
    #[serde(borrow)]
    ipv6_prefixes: Vec<AwsPrefix<'a>>,
}

#[derive(Deserialize)]
struct AwsPrefix<'a> {
    #[serde(borrow, alias = "ipv6_prefix")]
    ip_prefix: Cow<'a, str>,
    #[serde(borrow, default)]
    region: Cow<'a, str>,
    #[serde(borrow, default)]
    service: Cow<'a, str>,
}

#[derive(Deserialize)]
struct Azure<'a> {
    #[serde(borrow)]
    values: Vec<AzureTag<'a>>,
}

#[derive(Deserialize)]
struct AzureTag<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(borrow)]
    properties: AzureProps<'a>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AzureProps<'a> {
    #[serde(borrow, default)]
    region: Cow<'a, str>,
    #[serde(borrow, default)]
    system_service: Cow<'a, str>,
    #[serde(borrow, default)]
    address_prefixes: Vec<Cow<'a, str>>,
}

fn owned<'a>(s: String) -> Cow<'a, str> {
    Cow::Owned(s)
}

/// Formats accepted in a pack's `[[import]]`.
pub const FORMATS: &[&str] = &[
    "aws-ip-ranges",
    "google-ip-ranges",
    "azure-service-tags",
    "oracle-ip-ranges",
    "github-meta",
    "cidr-list",
    "geofeed",
    "fastly-ip-list",
];

fn s<'a>(v: &Value) -> Cow<'a, str> {
    owned(v.as_str().unwrap_or_default().to_string())
}

fn json(data: &[u8]) -> Result<Value, String> {
    serde_json::from_slice(data).map_err(|e| format!("not valid JSON: {e}"))
}

fn arr<'a>(v: &'a Value, key: &str) -> Result<&'a Vec<Value>, String> {
    v.get(key)
        .and_then(Value::as_array)
        .ok_or_else(|| format!("missing array {key:?}"))
}

/// Parses a provider file. Errors name what is wrong; ranges are validated by the caller.
pub fn parse<'a>(format: &str, data: &'a [u8]) -> Result<Vec<Range<'a>>, String> {
    let mut out = Vec::new();
    match format {
        "aws-ip-ranges" => {
            let v: Aws<'a> = serde_json::from_slice(data)
                .map_err(|e| format!("not an AWS ip-ranges file: {e}"))?;
            for p in v.prefixes.into_iter().chain(v.ipv6_prefixes) {
                out.push(Range {
                    cidr: p.ip_prefix,
                    service: p.service,
                    region: p.region,
                });
            }
        }
        "google-ip-ranges" => {
            let v = json(data)?;
            for p in arr(&v, "prefixes")? {
                let cidr = p
                    .get("ipv4Prefix")
                    .or_else(|| p.get("ipv6Prefix"))
                    .map(s)
                    .unwrap_or_default();
                out.push(Range {
                    cidr,
                    service: s(&p["service"]),
                    region: s(&p["scope"]),
                });
            }
        }
        "azure-service-tags" => {
            let v: Azure<'a> = serde_json::from_slice(data)
                .map_err(|e| format!("not an Azure ServiceTags file: {e}"))?;
            for t in v.values {
                let p = t.properties;
                let service = if p.system_service.is_empty() {
                    t.name
                } else {
                    p.system_service
                };
                for c in p.address_prefixes {
                    out.push(Range {
                        cidr: c,
                        service: service.clone(),
                        region: p.region.clone(),
                    });
                }
            }
        }
        "oracle-ip-ranges" => {
            let v = json(data)?;
            for r in arr(&v, "regions")? {
                let region = s(&r["region"]);
                for c in r["cidrs"].as_array().into_iter().flatten() {
                    let tags: Vec<&str> = c["tags"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .collect();
                    out.push(Range {
                        cidr: s(&c["cidr"]),
                        service: owned(tags.join(",")),
                        region: region.clone(),
                    });
                }
            }
        }
        "github-meta" => {
            let v = json(data)?;
            let obj = v.as_object().ok_or("expected a JSON object")?;
            for (key, val) in obj {
                let Some(list) = val.as_array() else { continue };
                for item in list {
                    let Some(c) = item.as_str() else { continue };
                    // Some keys (ssh_keys, domains) hold other strings: only address lists.
                    if c.parse::<std::net::IpAddr>().is_ok()
                        || c.split_once('/')
                            .is_some_and(|(a, _)| a.parse::<std::net::IpAddr>().is_ok())
                    {
                        out.push(Range {
                            cidr: owned(c.to_string()),
                            service: owned(key.clone()),
                            region: Cow::Borrowed(""),
                        });
                    }
                }
            }
        }
        "fastly-ip-list" => {
            let v = json(data)?;
            for key in ["addresses", "ipv6_addresses"] {
                for p in arr(&v, key)? {
                    out.push(Range {
                        cidr: s(p),
                        service: Cow::Borrowed(""),
                        region: Cow::Borrowed(""),
                    });
                }
            }
        }
        "cidr-list" | "geofeed" => {
            let text = std::str::from_utf8(data).map_err(|_| "not UTF-8 text")?;
            for line in text.lines() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                if format == "cidr-list" {
                    out.push(Range {
                        cidr: Cow::Borrowed(line),
                        service: Cow::Borrowed(""),
                        region: Cow::Borrowed(""),
                    });
                } else {
                    let cols: Vec<&str> = line.split(',').map(str::trim).collect();
                    let region = match (cols.get(1), cols.get(2)) {
                        (Some(c), Some(r)) if !r.is_empty() => owned(format!("{c}/{r}")),
                        (Some(c), _) => Cow::Borrowed(*c),
                        _ => Cow::Borrowed(""),
                    };
                    out.push(Range {
                        cidr: Cow::Borrowed(cols[0]),
                        service: Cow::Borrowed(""),
                        region,
                    });
                }
            }
        }
        other => {
            return Err(format!(
                "unknown import format {other:?} (one of {})",
                FORMATS.join(", ")
            ))
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_format_reads_its_shape() {
        let aws = br#"{"syncToken":"1","prefixes":[{"ip_prefix":"3.5.140.0/22","region":"ap-northeast-2","service":"S3","network_border_group":"ap-northeast-2"}],"ipv6_prefixes":[{"ipv6_prefix":"2600:1f00::/24","region":"GLOBAL","service":"AMAZON"}]}"#;
        let r = parse("aws-ip-ranges", aws).expect("aws");
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].service, "S3");
        assert_eq!(r[0].region, "ap-northeast-2");
        let g = br#"{"prefixes":[{"ipv4Prefix":"34.1.208.0/20","service":"Google Cloud","scope":"africa-south1"},{"ipv6Prefix":"2600:1900:8000::/44","service":"Google Cloud","scope":"us-east1"}]}"#;
        assert_eq!(
            parse("google-ip-ranges", g).expect("g")[1].region,
            "us-east1"
        );
        let az = br#"{"values":[{"name":"Storage.WestEurope","properties":{"region":"westeurope","systemService":"AzureStorage","addressPrefixes":["13.69.40.0/24","2603:1020::/47"]}}]}"#;
        let r = parse("azure-service-tags", az).expect("az");
        assert_eq!((r.len(), &*r[0].service), (2, "AzureStorage"));
        let oci = br#"{"regions":[{"region":"us-phoenix-1","cidrs":[{"cidr":"129.146.0.0/21","tags":["OCI"]}]}]}"#;
        assert_eq!(
            parse("oracle-ip-ranges", oci).expect("oci")[0].service,
            "OCI"
        );
        let gh = br#"{"verifiable_password_authentication":false,"hooks":["192.30.252.0/22"],"ssh_keys":["ssh-ed25519 AAAA"],"web":["140.82.112.0/20","2a0a:a440::/29"]}"#;
        let r = parse("github-meta", gh).expect("gh");
        assert_eq!(r.len(), 3);
        assert!(r.iter().all(|x| x.service == "hooks" || x.service == "web"));
        let geo = b"# comment\n2a03:b0c0::/32,NL,NL-NH,Amsterdam,\n5.101.96.0/21,NL,,,\n";
        let r = parse("geofeed", geo).expect("geo");
        assert_eq!((&*r[0].region, &*r[1].region), ("NL/NL-NH", "NL"));
        assert_eq!(
            parse("cidr-list", b"173.245.48.0/20\n# x\n\n")
                .expect("cf")
                .len(),
            1
        );
        assert!(parse("aws-ip-ranges", b"{").is_err());
        assert!(parse("nope", b"").is_err());
    }
}
