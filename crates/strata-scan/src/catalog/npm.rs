//! npm: each `node_modules/<name>/package.json` and `node_modules/@scope/<name>/package.json`
//! (nested `node_modules` included); `package.json` files deeper inside a package are
//! not packages.

use super::Found;
use crate::error::Result;
use crate::package::{Kind, Package, purl};
use crate::root::Root;

/// Whether `path` is a package's own `package.json` under a `node_modules`.
pub(crate) fn is_package_json(path: &str) -> bool {
    let Some(dir) = path.strip_suffix("/package.json") else { return false };
    let parts: Vec<&str> = dir.rsplit('/').take(3).collect();
    match parts.as_slice() {
        [_, "node_modules", ..] => true,
        [_, scope, "node_modules"] => scope.starts_with('@'),
        _ => false,
    }
}

pub(crate) fn catalog(root: &dyn Root, found: &mut Found) -> Result<()> {
    let files: Vec<String> = found.files.iter().filter(|f| is_package_json(f)).cloned().collect();
    let contents = root.read_many(&files)?;
    for f in files {
        let Some(bytes) = contents.get(&f) else { continue };
        // A package.json that does not parse is not a package (npm would refuse it too).
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(bytes) else { continue };
        let (Some(name), Some(version)) = (v["name"].as_str(), v["version"].as_str()) else { continue };
        let license = match &v["license"] {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Object(o) => o.get("type").and_then(|t| t.as_str()).map(str::to_owned),
            _ => None,
        };
        let (ns, base) = match name.split_once('/') {
            Some((scope, n)) if scope.starts_with('@') => (Some(scope), n),
            _ => (None, name),
        };
        found.packages.push(Package {
            kind: Kind::Npm,
            purl: purl(Kind::Npm, ns, base, version, &[]),
            name: name.to_owned(),
            version: version.to_owned(),
            arch: None,
            source: None,
            source_version: None,
            license,
            location: f.clone(),
            record: Some(f.clone()),
            files: crate::Files::new(),
            layer: None,
            changed_in: Vec::new(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn package_json_paths() {
        assert!(super::is_package_json("app/node_modules/left-pad/package.json"));
        assert!(super::is_package_json("node_modules/@types/node/package.json"));
        assert!(super::is_package_json("a/node_modules/x/node_modules/y/package.json"));
        assert!(!super::is_package_json("app/node_modules/left-pad/lib/package.json"));
        assert!(!super::is_package_json("app/package.json"));
    }
}
