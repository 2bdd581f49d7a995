// Charts for the 2026-11-14 report (English version, legacy separate script).
function initializeAllVisuals_report_en() {
    var fngContainerEn = document.getElementById('fng-gauge-container-en');
    if (fngContainerEn) {
        fngContainerEn.innerHTML = '';
        createGauge(fngContainerEn, 38, {
            min: 0,
            max: 100,
            segments: [
                { limit: 25, color: 'var(--fng-extreme-fear-color)', label: 'Extreme Fear' },
                { limit: 45, color: 'var(--fng-fear-color)', label: 'Fear' },
                { limit: 55, color: 'var(--fng-neutral-color)', label: 'Neutral' },
                { limit: 75, color: 'var(--fng-greed-color)', label: 'Greed' },
                { limit: 100, color: 'var(--fng-extreme-greed-color)', label: 'Extreme Greed' }
            ]
        });
    }

    var dominanceContainerEn = document.getElementById('dominance-doughnut-container-en');
    if (dominanceContainerEn) {
        dominanceContainerEn.innerHTML = '';
        createDoughnutChart(dominanceContainerEn, [
            { value: 58.1, label: 'Bitcoin', color: 'var(--icon-color-btc)' },
            { value: 12.5, label: 'Ethereum', color: 'var(--icon-color-eth)' },
            { value: 6.2, label: 'Tether', color: 'var(--icon-color-usdt)' },
            { value: 4.5, label: 'XRP', color: 'var(--icon-color-xrp)' },
            { value: 4.1, label: 'BNB', color: 'var(--icon-color-bnb)' },
            { value: 2.7, label: 'Solana', color: 'var(--icon-color-sol)' },
            { value: 11.9, label: 'Others', color: 'var(--slate-gray-color)' }
        ], 'Market cap share (%)');
    }

    var btcContainerEn = document.getElementById('btc-price-chart-container-en');
    if (btcContainerEn) {
        btcContainerEn.innerHTML = '';
        createLineChart(btcContainerEn, [89940, 91220, 90480, 89150, 88730, 88010, 86420], {
            color: 'var(--icon-color-btc)',
            valuePrefix: '$'
        });
    }
}
