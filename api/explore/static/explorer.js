// The explorer's live parts (docs/explorer.md): charts drawn from the JSON beside each canvas, countdowns
// to a timelock in chain time, and elements that poll their JSON twin and update in place.
(function () {
  "use strict";

  function drawCharts() {
    if (typeof window.Chart === "undefined") return;
    document.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      var source = document.getElementById(canvas.dataset.chart);
      if (source) new window.Chart(canvas, JSON.parse(source.textContent));
    });
  }

  // Chain time on this page: the chain's clock at the last reading plus the seconds since, by this browser's clock.
  function chainClock(root) {
    var base = Number(root.dataset.chainNow), readAt = Date.now();
    return {
      now: function () { return base + Math.floor((Date.now() - readAt) / 1000); },
      reset: function (chainNow) { base = chainNow; readAt = Date.now(); },
    };
  }

  function countdown(root, clock) {
    var out = root.querySelector("[data-countdown]");
    if (!out || !root.dataset.timelock) return function () {};
    function tick() {
      var left = Number(root.dataset.timelock) - clock.now();
      out.textContent = left > 0 ? left + " s left" : "expired";
    }
    tick();
    setInterval(tick, 1000);
    return tick;
  }

  function live(root) {
    var clock = chainClock(root);
    var tick = countdown(root, clock);
    var busy = false;
    function apply(data) {
      Object.keys(data).forEach(function (name) {
        root.querySelectorAll('[data-field="' + name + '"]').forEach(function (el) {
          if (el.textContent !== String(data[name])) el.textContent = data[name];
        });
        root.querySelectorAll('[data-field-value="' + name + '"]').forEach(function (el) { el.value = data[name]; });
      });
      if (typeof data.chain_now === "number") { clock.reset(data.chain_now); tick(); }
      var until = root.dataset.reloadUnless;
      if (until && root.dataset.initial === until && data.status && data.status !== until) window.location.reload();
    }
    function poll() {
      if (busy || document.hidden) return;
      busy = true;
      fetch(root.dataset.live, { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (reply) { return reply.ok ? reply.json() : null; })
        .then(function (data) { if (data) apply(data); })
        .catch(function () { /* the server is away: try again at the next tick */ })
        .finally(function () { busy = false; });
    }
    setInterval(poll, Number(root.dataset.interval || 1000));
  }

  drawCharts();
  document.querySelectorAll("[data-live]").forEach(live);
  document.querySelectorAll("[data-timelock]:not([data-live])").forEach(function (root) { countdown(root, chainClock(root)); });
})();
