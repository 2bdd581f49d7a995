//! The changes between two JSON snapshots, in the shape the browser merges back into the
//! older one (`merge` in `assets/js/market.js`).

use serde_json::{Map, Value};

/// What turns `old` into `new` when merged into it: objects are compared member by member and
/// only the members that differ are kept (a member `new` lacks becomes `null`); anything else
/// is replaced whole. `None` when they are equal. Unlike RFC 7396, `null` sets a value rather
/// than removing it: a snapshot's members never go away, they only become `null`.
pub fn merge_patch(old: &Value, new: &Value) -> Option<Value> {
    let (Value::Object(old), Value::Object(new)) = (old, new) else {
        return (old != new).then(|| new.clone());
    };
    let mut patch = Map::new();
    for (key, value) in new {
        let changed = match old.get(key) {
            Some(before) => merge_patch(before, value),
            None => Some(value.clone()),
        };
        if let Some(changed) = changed {
            patch.insert(key.clone(), changed);
        }
    }
    for key in old.keys().filter(|k| !new.contains_key(*k)) {
        patch.insert(key.clone(), Value::Null);
    }
    (!patch.is_empty()).then_some(Value::Object(patch))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::market::Snapshot;

    /// The browser's side, as `market.js` does it.
    fn merge(base: &Value, patch: &Value) -> Value {
        match (base, patch) {
            (Value::Object(base), Value::Object(patch)) => {
                let mut out = base.clone();
                for (key, value) in patch {
                    let merged = merge(base.get(key).unwrap_or(&Value::Null), value);
                    out.insert(key.clone(), merged);
                }
                Value::Object(out)
            }
            _ => patch.clone(),
        }
    }

    #[test]
    fn keeps_only_what_changed() {
        let old = json!({
            "price": 1.5, "name": "BTC", "gone": 1, "none": null,
            "freshness": { "a": { "at": "t1", "stale": false }, "b": { "at": "t1", "stale": false } },
            "spark": [[1, 2.0], [2, 3.0]],
        });
        let new = json!({
            "price": 1.6, "name": "BTC", "none": null, "added": [1],
            "freshness": { "a": { "at": "t2", "stale": false }, "b": { "at": "t1", "stale": false } },
            "spark": [[1, 2.0], [2, 3.5]],
        });
        let patch = merge_patch(&old, &new).expect("changed");
        assert_eq!(
            patch,
            json!({
                "price": 1.6, "gone": null, "added": [1],
                "freshness": { "a": { "at": "t2" } },
                "spark": [[1, 2.0], [2, 3.5]],
            })
        );
        assert_eq!(merge_patch(&new, &new), None);
    }

    #[test]
    fn values_that_change_kind_are_replaced_whole() {
        let patch = merge_patch(&json!({ "a": { "x": 1 } }), &json!({ "a": null }));
        assert_eq!(patch, Some(json!({ "a": null })));
        let patch = merge_patch(&json!({ "a": null }), &json!({ "a": { "x": 1 } }));
        assert_eq!(patch, Some(json!({ "a": { "x": 1 } })));
        assert_eq!(merge_patch(&json!(1), &json!("1")), Some(json!("1")));
    }

    #[test]
    fn merging_the_patch_gives_the_new_snapshot() {
        let old = serde_json::to_value(Snapshot::default()).expect("json");
        let mut newer = Snapshot {
            demo: true,
            btc_sparkline: vec![(1, 84_000.0), (2, 84_100.5)],
            ..Snapshot::default()
        };
        let new = serde_json::to_value(&newer).expect("json");
        let patch = merge_patch(&old, &new).expect("changed");
        assert!(patch.get("btc_price_usd").is_none(), "{patch}");
        assert_eq!(merge(&old, &patch), new);

        newer.btc_sparkline.pop();
        let newest = serde_json::to_value(&newer).expect("json");
        let patch = merge_patch(&new, &newest).expect("changed");
        assert_eq!(patch, json!({ "btc_sparkline": [[1, 84_000.0]] }));
        assert_eq!(merge(&new, &patch), newest);
    }
}
