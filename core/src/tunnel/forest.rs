//! The model: bagged small decision trees per carrier (trained by benchmarks/tunnel_eval.py,
//! stored as JSON in portwatch/data/tunnel-model.json), per-class centroids for the "nothing
//! known looks like this" check, and the vote.
//!
//! Loading validates everything the vote reads and bounds it (trees, nodes, depth, classes), so
//! a walk never fails: nested `{"feature", "threshold", "le", "gt"}` nodes become a flat arena
//! walked iteratively; `{"class", "counts"}` leaves keep their counts in JSON order (the order
//! the former Python code summed the votes in).
#![forbid(unsafe_code)]

use super::features::{self, Features, MODEL_FEATURES};
use super::pyfmt::square;
use crate::meta::{Map, Value};

/// Bounds on a model (the shipped one: 25 trees per carrier, depth 4, <= 31 nodes each).
pub const MAX_TREES: usize = 512;
pub const MAX_NODES: usize = 4096;
pub const MAX_DEPTH: usize = 32;
pub const MAX_CARRIERS: usize = 16;
pub const MAX_CLASSES: usize = 256;
/// Counts must stay exact in f64 (Python summed them as integers).
const MAX_COUNT: f64 = 9_007_199_254_740_992.0;

#[derive(Clone, Debug, PartialEq)]
pub struct Leaf {
    pub class: String,
    /// (class, training flows) in the JSON's order.
    pub counts: Vec<(String, f64)>,
    /// The counts as written (integers stay integers when handed back to Python).
    pub raw: Map<String, Value>,
}

#[derive(Clone, Debug, PartialEq)]
enum Node {
    Split {
        /// Index in `features::NAMES`.
        feature: usize,
        threshold: f64,
        le: usize,
        gt: usize,
    },
    Leaf(Leaf),
}

/// One step of a decision path: (feature index in `features::NAMES`, threshold, went <=).
pub type Step = (usize, f64, bool);

/// A node still to load: (its JSON, depth, (parent index, is the <= branch)).
type Pending<'a> = (&'a Value, usize, Option<(usize, bool)>);

#[derive(Clone, Debug, PartialEq)]
pub struct Tree {
    /// The root is node 0; children always come after their parent.
    nodes: Vec<Node>,
}

fn num(v: Option<&Value>, what: &str) -> Result<f64, String> {
    v.and_then(Value::as_f64)
        .filter(|x| x.is_finite())
        .ok_or_else(|| format!("{what}: not a finite number"))
}

fn nums(v: Option<&Value>, what: &str) -> Result<Vec<f64>, String> {
    let a = v
        .and_then(Value::as_array)
        .ok_or_else(|| format!("{what}: not a list"))?;
    if a.len() > features::NAMES.len() * 4 {
        return Err(format!("{what}: too long"));
    }
    a.iter().map(|x| num(Some(x), what)).collect()
}

impl Tree {
    /// A tree from its JSON, iteratively (no recursion on the data).
    pub fn from_value(root: &Value) -> Result<Tree, String> {
        let mut nodes: Vec<Node> = Vec::new();
        let mut todo: Vec<Pending<'_>> = vec![(root, 0, None)];
        while let Some((v, depth, parent)) = todo.pop() {
            if nodes.len() >= MAX_NODES {
                return Err("tree: too many nodes".into());
            }
            if depth > MAX_DEPTH {
                return Err("tree: too deep".into());
            }
            let obj = v.as_object().ok_or("tree node: not an object")?;
            let here = nodes.len();
            if let Some(name) = obj.get("feature") {
                let name = name.as_str().ok_or("tree node: feature not a string")?;
                let feature = features::index(name)
                    .ok_or_else(|| format!("tree node: unknown feature {name:?}"))?;
                let threshold = num(obj.get("threshold"), "tree node threshold")?;
                let (le, gt) = (
                    obj.get("le").ok_or("tree node: no le branch")?,
                    obj.get("gt").ok_or("tree node: no gt branch")?,
                );
                nodes.push(Node::Split {
                    feature,
                    threshold,
                    le: 0,
                    gt: 0,
                });
                todo.push((gt, depth + 1, Some((here, false))));
                todo.push((le, depth + 1, Some((here, true))));
            } else {
                nodes.push(Node::Leaf(leaf(obj)?));
            }
            if let Some((p, is_le)) = parent {
                if let Some(Node::Split { le, gt, .. }) = nodes.get_mut(p) {
                    if is_le {
                        *le = here;
                    } else {
                        *gt = here;
                    }
                }
            }
        }
        Ok(Tree { nodes })
    }

    /// The leaf `value` (a feature by `features::NAMES` index) reaches, and the path there when
    /// `with_path`. None when a feature the path needs has no value.
    pub fn walk_with(
        &self,
        value: impl Fn(usize) -> Option<f64>,
        with_path: bool,
    ) -> Option<(&Leaf, Vec<Step>)> {
        let mut path = Vec::new();
        let mut at = 0;
        // Children come after parents, so a walk visits at most every node once.
        for _ in 0..=self.nodes.len() {
            match self.nodes.get(at)? {
                Node::Leaf(l) => return Some((l, path)),
                &Node::Split {
                    feature,
                    threshold,
                    le,
                    gt,
                } => {
                    let went_le = value(feature)? <= threshold;
                    if with_path {
                        path.push((feature, threshold, went_le));
                    }
                    at = if went_le { le } else { gt };
                }
            }
        }
        None
    }

    pub fn walk(&self, f: &Features, with_path: bool) -> Option<(&Leaf, Vec<Step>)> {
        self.walk_with(|i| f.0.get(i).copied(), with_path)
    }

    fn leaves(&self) -> impl Iterator<Item = &Leaf> {
        self.nodes.iter().filter_map(|n| match n {
            Node::Leaf(l) => Some(l),
            Node::Split { .. } => None,
        })
    }
}

fn leaf(obj: &Map<String, Value>) -> Result<Leaf, String> {
    let class = obj
        .get("class")
        .and_then(Value::as_str)
        .ok_or("tree leaf: no class")?
        .to_owned();
    let raw = obj
        .get("counts")
        .and_then(Value::as_object)
        .ok_or("tree leaf: no counts")?;
    if raw.is_empty() || raw.len() > MAX_CLASSES {
        return Err("tree leaf: no counts or too many".into());
    }
    let counts = raw
        .iter()
        .map(|(c, k)| {
            let k = num(Some(k), "tree leaf count")?;
            if !(0.0..=MAX_COUNT).contains(&k) {
                return Err("tree leaf count out of range".to_string());
            }
            Ok((c.clone(), k))
        })
        .collect::<Result<_, String>>()?;
    Ok(Leaf {
        class,
        counts,
        raw: raw.clone(),
    })
}

#[derive(Clone, Debug, PartialEq)]
pub struct Class {
    pub kind: Option<String>,
    pub centroid: Option<Vec<f64>>,
}

/// `confident` for a model that names none.
pub const DEFAULT_CONFIDENT: f64 = 0.6;

/// A loaded model. `usable` is false for a model of other features (one being retrained): it
/// names nothing, as the Python classifier did.
#[derive(Clone, Debug, PartialEq)]
pub struct Model {
    pub usable: bool,
    carriers: Vec<(String, Vec<Tree>)>,
    mean: Vec<f64>,
    std: Vec<f64>,
    classes: Vec<(String, Class)>,
    pub max_distance: f64,
    /// The confidence from which the policy takes a verdict as said (`tunnels.is_confident`).
    pub confident: f64,
}

/// What the forest says: class, confidence, scaled distance to the class centroid, and the
/// first tree's path when its leaf agrees with the vote.
#[derive(Clone, Debug, PartialEq)]
pub struct Prediction {
    pub class: String,
    pub prob: f64,
    pub dist: f64,
    pub path: Vec<Step>,
}

impl Model {
    pub fn from_json(text: &str) -> Result<Model, String> {
        let v: Value = serde_json::from_str(text).map_err(|e| format!("tunnel model: {e}"))?;
        Model::from_value(&v)
    }

    pub fn from_value(v: &Value) -> Result<Model, String> {
        let m = v.as_object().ok_or("tunnel model: not an object")?;
        let names: Vec<&str> = match m.get("features") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a.iter().map(|x| x.as_str().unwrap_or("")).collect(),
            Some(_) => return Err("tunnel model: features not a list".into()),
        };
        let mut model = Model {
            usable: names == MODEL_FEATURES,
            carriers: Vec::new(),
            mean: Vec::new(),
            std: Vec::new(),
            classes: Vec::new(),
            max_distance: 3.0,
            confident: DEFAULT_CONFIDENT,
        };
        if !model.usable {
            return Ok(model);
        }
        let trees = m
            .get("trees")
            .and_then(Value::as_object)
            .ok_or("tunnel model: no trees")?;
        if trees.len() > MAX_CARRIERS {
            return Err("tunnel model: too many carriers".into());
        }
        for (carrier, t) in trees {
            let list: Vec<Tree> = match t {
                Value::Array(a) if a.len() > MAX_TREES => {
                    return Err("tunnel model: too many trees".into())
                }
                Value::Array(a) => a.iter().map(Tree::from_value).collect::<Result<_, _>>()?,
                Value::Object(o) if !o.is_empty() => vec![Tree::from_value(t)?],
                // Python's `if not trees`: nothing to vote with for this carrier.
                Value::Null | Value::Object(_) | Value::Bool(false) => Vec::new(),
                _ => return Err("tunnel model: trees of a carrier not a list".into()),
            };
            model.carriers.push((carrier.clone(), list));
        }
        model.mean = nums(m.get("mean"), "tunnel model mean")?;
        model.std = nums(m.get("std"), "tunnel model std")?;
        let used = MODEL_FEATURES
            .len()
            .min(model.mean.len())
            .min(model.std.len());
        if used == 0 || model.std.iter().take(used).any(|s| *s == 0.0) {
            return Err("tunnel model: no mean/std or a zero spread".into());
        }
        let classes = m
            .get("classes")
            .and_then(Value::as_object)
            .ok_or("tunnel model: no classes")?;
        if classes.len() > MAX_CLASSES {
            return Err("tunnel model: too many classes".into());
        }
        for (name, c) in classes {
            let c = c.as_object().ok_or("tunnel model: class not an object")?;
            let kind = match c.get("kind") {
                None => None,
                Some(Value::String(s)) => Some(s.clone()),
                Some(_) => return Err("tunnel model: class kind not a string".into()),
            };
            let centroid = match c.get("centroid") {
                None => None,
                v => Some(nums(v, "tunnel model centroid")?),
            };
            model.classes.push((name.clone(), Class { kind, centroid }));
        }
        // Every class a leaf can vote for needs a centroid (the distance check reads it).
        for (_, trees) in &model.carriers {
            for leaf in trees.iter().flat_map(Tree::leaves) {
                for (c, _) in &leaf.counts {
                    if model.class(c).and_then(|k| k.centroid.as_ref()).is_none() {
                        return Err(format!("tunnel model: class {c:?} has no centroid"));
                    }
                }
            }
        }
        if let Some(d) = m.get("max_distance") {
            model.max_distance = d
                .as_f64()
                .filter(|d| !d.is_nan())
                .ok_or("tunnel model: max_distance not a number")?;
        }
        if let Some(c) = m.get("confident") {
            model.confident = c
                .as_f64()
                .filter(|c| !c.is_nan())
                .ok_or("tunnel model: confident not a number")?;
        }
        Ok(model)
    }

    pub fn class(&self, name: &str) -> Option<&Class> {
        self.classes.iter().find(|(n, _)| n == name).map(|(_, c)| c)
    }

    fn trees(&self, carrier: &str) -> &[Tree] {
        self.carriers
            .iter()
            .find(|(c, _)| c == carrier)
            .map_or(&[], |(_, t)| t.as_slice())
    }

    /// Every tree of the carrier votes with its leaf's class shares, smoothed ((k + 1) / (n + 2),
    /// so a leaf of 2 training flows is not "certain"); the class with the most votes wins (ties
    /// to the greater name) and its mean share is the confidence.
    pub fn predict(&self, f: &Features, carrier: &str) -> Prediction {
        let trees = self.trees(carrier);
        let none = Prediction {
            class: "unknown".into(),
            prob: 0.0,
            dist: f64::INFINITY,
            path: Vec::new(),
        };
        let Some((first_leaf, first_path)) = trees.first().and_then(|t| t.walk(f, true)) else {
            return none;
        };
        let mut votes: Vec<(&str, f64)> = Vec::new();
        for (i, tree) in trees.iter().enumerate() {
            let leaf = if i == 0 {
                first_leaf
            } else {
                match tree.walk(f, false) {
                    Some((l, _)) => l,
                    None => continue,
                }
            };
            let n = leaf.counts.iter().fold(0.0, |s, (_, k)| s + k);
            for (c, k) in &leaf.counts {
                let share = (k + 1.0) / (n + 2.0);
                match votes.iter_mut().find(|(v, _)| v == c) {
                    Some((_, total)) => *total += share,
                    None => votes.push((c, share)),
                }
            }
        }
        let mut best: Option<(&str, f64)> = None;
        for &(c, v) in &votes {
            if best.is_none_or(|(bc, bv)| v > bv || (v == bv && c > bc)) {
                best = Some((c, v));
            }
        }
        let Some((cls, v)) = best else { return none };
        let prob = v / trees.len() as f64;
        let path = if first_leaf.class == cls {
            first_path
        } else {
            Vec::new()
        };
        Prediction {
            class: cls.to_owned(),
            prob,
            dist: self.distance(f, cls),
            path,
        }
    }

    /// RMS distance, in spreads of each feature, from the class centroid.
    fn distance(&self, f: &Features, cls: &str) -> f64 {
        let x: Vec<f64> = MODEL_FEATURES
            .iter()
            .zip(self.mean.iter().zip(&self.std))
            .map(|(name, (m, s))| (f.get(name) - m) / s)
            .collect();
        let centroid = self
            .class(cls)
            .and_then(|c| c.centroid.as_deref())
            .unwrap_or_default();
        let sum = x
            .iter()
            .zip(centroid)
            .fold(0.0, |s, (a, b)| s + square(a - b));
        if x.is_empty() {
            return f64::INFINITY;
        }
        (sum / x.len() as f64).sqrt()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::json;

    fn model(trees: Value) -> Value {
        json!({
            "features": MODEL_FEATURES,
            "trees": {"ssh": trees},
            "mean": vec![0.0; 18], "std": vec![1.0; 18],
            "classes": {"a": {"kind": "bulk", "centroid": vec![0.0; 18]},
                        "b": {"kind": "x11", "centroid": vec![0.0; 18]}},
        })
    }

    fn feats(opens: f64) -> Features {
        let mut f = [0.0; 20];
        f[features::index("opens").unwrap()] = opens;
        Features(f)
    }

    #[test]
    fn walks_and_votes() {
        let t = json!({"feature": "opens", "threshold": 0.5,
                       "le": {"class": "a", "counts": {"a": 3, "b": 1}},
                       "gt": {"class": "b", "counts": {"b": 2}}});
        let m = Model::from_value(&model(json!([t.clone(), t]))).unwrap();
        let p = m.predict(&feats(0.1), "ssh");
        assert_eq!(p.class, "a");
        assert_eq!(p.prob, 2.0 * (4.0 / 6.0) / 2.0);
        assert_eq!(p.path, vec![(features::index("opens").unwrap(), 0.5, true)]);
        assert_eq!(p.dist, (square(0.1) / 18.0).sqrt());
        let p = m.predict(&feats(0.5), "ssh"); // <= threshold goes le
        assert_eq!(p.class, "a");
        let p = m.predict(&feats(0.9), "ssh");
        assert_eq!((p.class.as_str(), p.prob), ("b", 0.75));
        // No trees for the carrier: unknown, infinitely far.
        let p = m.predict(&feats(0.9), "tls");
        assert_eq!((p.class.as_str(), p.dist), ("unknown", f64::INFINITY));
    }

    #[test]
    fn ties_go_to_the_greater_class_name_and_the_path_only_when_it_agrees() {
        let t = json!({"class": "a", "counts": {"a": 1, "b": 1}});
        let m = Model::from_value(&model(json!(t))).unwrap(); // a single tree as an object
        let p = m.predict(&feats(0.0), "ssh");
        assert_eq!((p.class.as_str(), p.prob, p.path.len()), ("b", 0.5, 0));
    }

    #[test]
    fn the_confidence_threshold_is_the_models() {
        let leaf = json!({"class": "a", "counts": {"a": 1}});
        let m = Model::from_value(&model(leaf.clone())).unwrap();
        assert_eq!(m.confident, DEFAULT_CONFIDENT);
        let mut v = model(leaf);
        v["confident"] = json!(0.75);
        assert_eq!(Model::from_value(&v).unwrap().confident, 0.75);
        v["confident"] = json!("high");
        assert!(Model::from_value(&v).is_err());
        assert_eq!(super::super::shipped().map(|m| m.confident), Some(0.6));
    }

    #[test]
    fn bad_models_are_refused() {
        let leaf = json!({"class": "a", "counts": {"a": 1}});
        let mut deep = leaf.clone();
        for _ in 0..=MAX_DEPTH {
            deep = json!({"feature": "opens", "threshold": 0.0, "le": deep, "gt": leaf});
        }
        for bad in [
            json!({"feature": "nope", "threshold": 0, "le": leaf, "gt": leaf}),
            json!({"feature": "opens", "le": leaf, "gt": leaf}),
            json!({"feature": "opens", "threshold": 0, "le": leaf}),
            json!({"class": "a", "counts": {}}),
            json!({"class": "a", "counts": {"a": -1}}),
            json!({"class": "zz", "counts": {"zz": 1}}), // no centroid for zz
            json!({"counts": {"a": 1}}),
            json!([1]),
            deep,
        ] {
            assert!(Model::from_value(&model(json!([bad]))).is_err(), "{bad}");
        }
        let mut zero_std = model(json!([leaf]));
        zero_std["std"][3] = json!(0.0);
        assert!(Model::from_value(&zero_std).is_err());
        assert!(Model::from_json("[").is_err());
        assert!(Model::from_json("{}").is_ok_and(|m| !m.usable));
        let other = json!({"features": ["x"], "trees": 5});
        assert!(Model::from_value(&other).is_ok_and(|m| !m.usable));
    }
}
