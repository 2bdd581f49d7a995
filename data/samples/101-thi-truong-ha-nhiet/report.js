// Biểu đồ cho báo cáo ngày 14/11/2026 (phiên bản tiếng Việt).
// Phần tiếng Anh nằm trong initializeAllVisuals_report_en().
function initializeAllVisuals_report() {
    var fngContainer = document.getElementById('fng-gauge-container');
    if (fngContainer) {
        fngContainer.innerHTML = '';
        createGauge(fngContainer, 38, {
            min: 0,
            max: 100,
            segments: [
                { limit: 25, color: 'var(--fng-extreme-fear-color)', label: 'Sợ hãi tột độ' },
                { limit: 45, color: 'var(--fng-fear-color)', label: 'Sợ hãi' },
                { limit: 55, color: 'var(--fng-neutral-color)', label: 'Trung lập' },
                { limit: 75, color: 'var(--fng-greed-color)', label: 'Tham lam' },
                { limit: 100, color: 'var(--fng-extreme-greed-color)', label: 'Tham lam tột độ' }
            ]
        });
    }

    var dominanceContainer = document.getElementById('dominance-doughnut-container');
    if (dominanceContainer) {
        dominanceContainer.innerHTML = '';
        createDoughnutChart(dominanceContainer, [
            { value: 58.1, label: 'Bitcoin', color: 'var(--icon-color-btc)' },
            { value: 12.5, label: 'Ethereum', color: 'var(--icon-color-eth)' },
            { value: 6.2, label: 'Tether', color: 'var(--icon-color-usdt)' },
            { value: 4.5, label: 'XRP', color: 'var(--icon-color-xrp)' },
            { value: 4.1, label: 'BNB', color: 'var(--icon-color-bnb)' },
            { value: 2.7, label: 'Solana', color: 'var(--icon-color-sol)' },
            { value: 11.9, label: 'Khác', color: 'var(--slate-gray-color)' }
        ], 'Thị phần vốn hóa (%)');
    }

    var btcContainer = document.getElementById('btc-price-chart-container');
    if (btcContainer) {
        btcContainer.innerHTML = '';
        createLineChart(btcContainer, [89940, 91220, 90480, 89150, 88730, 88010, 86420], {
            color: 'var(--icon-color-btc)',
            valuePrefix: '$'
        });
    }
}
