//! The human table and the final JSON line.

use serde_json::{Map, Value};

use crate::stats::Hist;

enum Section {
    Pairs(Vec<(String, String)>),
    Grid {
        headers: Vec<String>,
        rows: Vec<Vec<String>>,
    },
}

#[derive(Default)]
pub struct Report {
    title: String,
    sections: Vec<Section>,
    json: Map<String, Value>,
}

impl Report {
    pub fn new(title: String) -> Report {
        Report {
            title,
            ..Default::default()
        }
    }

    /// One "name: value" line in the table.
    pub fn row(&mut self, name: &str, value: impl Into<String>) {
        if let Some(Section::Pairs(p)) = self.sections.last_mut() {
            p.push((name.into(), value.into()));
        } else {
            self.sections
                .push(Section::Pairs(vec![(name.into(), value.into())]));
        }
    }

    /// A grid with a header row (e.g. one row per transport).
    pub fn grid(&mut self, headers: &[&str], rows: Vec<Vec<String>>) {
        self.sections.push(Section::Grid {
            headers: headers.iter().map(|s| s.to_string()).collect(),
            rows,
        });
    }

    pub fn set(&mut self, key: &str, v: Value) {
        self.json.insert(key.into(), v);
    }

    pub fn print(&self, json_only: bool) {
        if !json_only {
            println!("{}", self.render());
        }
        println!("{}", serde_json::to_string(&self.json).expect("json"));
    }

    pub fn render(&self) -> String {
        let mut out = format!("== {} ==\n", self.title);
        for s in &self.sections {
            match s {
                Section::Pairs(p) => {
                    let w = p.iter().map(|(k, _)| k.chars().count()).max().unwrap_or(0);
                    for (k, v) in p {
                        out.push_str(&format!("  {k:<w$}  {v}\n"));
                    }
                }
                Section::Grid { headers, rows } => {
                    let mut widths: Vec<usize> =
                        headers.iter().map(|h| h.chars().count()).collect();
                    for r in rows {
                        for (i, c) in r.iter().enumerate() {
                            if i < widths.len() {
                                widths[i] = widths[i].max(c.chars().count());
                            }
                        }
                    }
                    let line = |cells: &[String]| {
                        let mut l = String::from(" ");
                        for (i, c) in cells.iter().enumerate() {
                            let w = widths.get(i).copied().unwrap_or(0);
                            if i == 0 {
                                l.push_str(&format!(" {c:<w$}"));
                            } else {
                                l.push_str(&format!(" | {c:>w$}"));
                            }
                        }
                        l.push('\n');
                        l
                    };
                    out.push_str(&line(headers));
                    let total: usize =
                        widths.iter().sum::<usize>() + 3 * widths.len().saturating_sub(1) + 1;
                    out.push_str(&format!("  {}\n", "-".repeat(total)));
                    for r in rows {
                        out.push_str(&line(r));
                    }
                }
            }
        }
        out
    }
}

/// Formats microseconds as milliseconds with 3 decimals, or "-".
pub fn ms(us: Option<u64>) -> String {
    us.map(|u| format!("{:.3}", u as f64 / 1000.0))
        .unwrap_or_else(|| "-".into())
}

/// "p50 … ms, p99 … ms, max … ms" of a latency histogram.
pub fn latency_ms(h: &Hist) -> String {
    format!(
        "p50 {} ms, p99 {} ms, max {} ms",
        ms(h.quantile(0.5)),
        ms(h.quantile(0.99)),
        ms(h.max())
    )
}

/// Formats an optional float with `d` decimals, or "-".
pub fn opt(v: Option<f64>, d: usize) -> String {
    v.map(|v| format!("{v:.d$}")).unwrap_or_else(|| "-".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_pairs_and_grids() {
        let mut r = Report::new("echo".into());
        r.row("clients", "10");
        r.row("round trips/s", "123");
        r.grid(
            &["transport", "rt/s"],
            vec![vec!["websocket".into(), "5".into()]],
        );
        r.set("scenario", Value::String("echo".into()));
        let s = r.render();
        assert!(s.contains("== echo =="));
        assert!(s.contains("  clients        10"));
        assert!(s.contains("websocket |    5"));
        assert_eq!(r.json["scenario"], "echo");
        assert_eq!(ms(Some(1500)), "1.500");
        assert_eq!(ms(None), "-");
        assert_eq!(opt(Some(1.234), 1), "1.2");
        let mut h = Hist::default();
        assert_eq!(latency_ms(&h), "p50 - ms, p99 - ms, max - ms");
        h.record(1500);
        assert_eq!(latency_ms(&h), "p50 1.500 ms, p99 1.500 ms, max 1.500 ms");
    }
}
