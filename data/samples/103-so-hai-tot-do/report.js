// Báo cáo chỉ có bản tiếng Việt: khi người đọc chọn tiếng Anh, trang vẫn hiển thị HTML
// tiếng Việt, nên luôn vẽ vào các container không có hậu tố -en và giữ nhãn tiếng Việt.
function initializeAllVisuals_report(language) {
    var rsiEl = document.getElementById('rsi-gauge-container');
    if (rsiEl) {
        rsiEl.innerHTML = '';
        createGauge(rsiEl, 32, {
            min: 0,
            max: 100,
            segments: [
                { limit: 30, color: 'var(--rsi-oversold-color)', label: 'Quá bán' },
                { limit: 70, color: 'var(--rsi-neutral-color)', label: 'Trung tính' },
                { limit: 100, color: 'var(--rsi-overbought-color)', label: 'Quá mua' }
            ]
        });
    }

    var etfEl = document.getElementById('etf-flow-bar-container');
    if (etfEl) {
        etfEl.innerHTML = '';
        var flows = [
            { day: 'T2 9/11', value: 212 },
            { day: 'T3 10/11', value: -148 },
            { day: 'T4 11/11', value: -386 },
            { day: 'T5 12/11', value: -523 },
            { day: 'T6 13/11', value: -291 }
        ];
        createBarChart(etfEl, flows.map(function (f) {
            return {
                value: f.value,
                label: f.day,
                color: f.value >= 0 ? 'var(--positive-color)' : 'var(--negative-color)'
            };
        }), {
            valuePrefix: '$',
            valueSuffix: 'M',
            yAxisLabel: 'Triệu USD'
        });
    }
}
