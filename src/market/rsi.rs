//! Wilder's relative strength index, for the local RSI(14) fallback.

pub const PERIOD: usize = 14;

/// RSI of the last close in `closes` (oldest first) with Wilder's smoothing; `None` when
/// there are not `period + 1` closes.
pub fn wilder(closes: &[f64], period: usize) -> Option<f64> {
    if period == 0 || closes.len() <= period {
        return None;
    }
    let n = period as f64;
    let change = |i: usize| closes[i] - closes[i - 1];
    let (mut gain, mut loss) = (1..=period).fold((0.0, 0.0), |(g, l), i| {
        let d = change(i);
        (g + d.max(0.0), l + (-d).max(0.0))
    });
    gain /= n;
    loss /= n;
    for i in period + 1..closes.len() {
        let d = change(i);
        gain = (gain * (n - 1.0) + d.max(0.0)) / n;
        loss = (loss * (n - 1.0) + (-d).max(0.0)) / n;
    }
    let rsi = if loss == 0.0 {
        if gain == 0.0 { 50.0 } else { 100.0 }
    } else {
        100.0 - 100.0 / (1.0 + gain / loss)
    };
    rsi.is_finite().then_some(rsi)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Wilder's worked example as published by StockCharts ("cs-rsi"), with its four-decimal
    /// closes (rounded to two they move the RSI by a few hundredths), and the RSI(14) of every
    /// close from the 15th on.
    const CLOSES: [f64; 33] = [
        44.3389, 44.0902, 44.1497, 43.6124, 44.3278, 44.8264, 45.0955, 45.4245, 45.8433, 46.0826,
        45.8931, 46.0328, 45.6140, 46.2820, 46.2820, 46.0028, 46.0328, 46.4116, 46.2222, 45.6439,
        46.2122, 46.2521, 45.7137, 46.4515, 45.7835, 45.3548, 44.0288, 44.1783, 44.2181, 44.5672,
        43.4205, 42.6628, 43.1314,
    ];
    const RSI: [f64; 19] = [
        70.53, 66.32, 66.55, 69.41, 66.36, 57.97, 62.93, 63.26, 56.06, 62.38, 54.71, 50.42, 39.99,
        41.46, 41.87, 45.46, 37.30, 33.08, 37.77,
    ];

    #[test]
    fn matches_the_published_example() {
        for (k, want) in RSI.iter().enumerate() {
            let got = wilder(&CLOSES[..=PERIOD + k], PERIOD).expect("enough closes");
            assert!(
                (got - want).abs() < 0.01,
                "close #{}: {got} vs {want}",
                PERIOD + k + 1
            );
        }
    }

    #[test]
    fn edge_cases() {
        assert_eq!(wilder(&CLOSES[..PERIOD], PERIOD), None);
        let rising: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(wilder(&rising, PERIOD), Some(100.0));
        assert_eq!(wilder(&[5.0; 20], PERIOD), Some(50.0));
    }
}
