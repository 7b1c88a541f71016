// The console's live updates: fetch the page's changing part every few seconds, and
// beep for an alert that is new (once the operator has turned the sound on).
(function () {
  "use strict";
  var live = document.getElementById("live");
  var button = document.getElementById("sound");
  var known = {};
  var audio = null;

  function loudIds() {
    var ids = [];
    document.querySelectorAll("[data-alert].loud").forEach(function (el) {
      ids.push(el.getAttribute("data-alert"));
    });
    return ids;
  }

  function beep() {
    if (!audio) { return; }
    [0, 0.35].forEach(function (start) {
      var osc = audio.createOscillator();
      var gain = audio.createGain();
      osc.frequency.value = 880;
      gain.gain.setValueAtTime(0.25, audio.currentTime + start);
      gain.gain.exponentialRampToValueAtTime(0.001, audio.currentTime + start + 0.3);
      osc.connect(gain).connect(audio.destination);
      osc.start(audio.currentTime + start);
      osc.stop(audio.currentTime + start + 0.3);
    });
  }

  function setSound(on) {
    if (!button) { return; }
    if (on && !audio) { audio = new (window.AudioContext || window.webkitAudioContext)(); }
    if (audio && on) { audio.resume(); }
    button.setAttribute("aria-pressed", on ? "true" : "false");
    button.textContent = on ? "Sound on" : "Sound off";
    try { localStorage.setItem("stopmo-sound", on ? "on" : "off"); } catch (e) { /* private mode */ }
  }

  function openDetails() {
    var open = [];
    live.querySelectorAll("details").forEach(function (d, i) { if (d.open) { open.push(i); } });
    return open;
  }

  // An operator filling in a command's form (focus in it, or a field changed): the
  // refresh waits, or it would wipe what was typed.
  function filling() {
    var active = document.activeElement;
    if (active && active !== document.body && live.contains(active) && active.closest("form")) {
      return true;
    }
    return Array.prototype.some.call(live.querySelectorAll("form input, form select"), function (f) {
      if (f.type === "hidden") { return false; }
      if (f.type === "checkbox" || f.type === "radio") { return f.checked !== f.defaultChecked; }
      if (f.tagName === "SELECT") {
        return Array.prototype.some.call(f.options, function (o) { return o.selected !== o.defaultSelected; });
      }
      return f.value !== f.defaultValue;
    });
  }

  function refresh() {
    if (filling()) { return; }
    fetch(live.getAttribute("data-live"), { credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        if (response.redirected || response.status === 401) { window.location.reload(); return null; }
        if (!response.ok) { throw new Error(response.status); }
        return response.text();
      })
      .then(function (html) {
        if (html === null || filling()) { return; }
        var open = openDetails();
        live.innerHTML = html;
        live.querySelectorAll("details").forEach(function (d, i) { d.open = open.indexOf(i) >= 0; });
        document.body.classList.remove("lost");
        var fresh = loudIds().filter(function (id) { return !known[id]; });
        fresh.forEach(function (id) { known[id] = true; });
        if (fresh.length && button && button.getAttribute("aria-pressed") === "true") { beep(); }
      })
      .catch(function () { document.body.classList.add("lost"); });
  }

  if (button) {
    button.addEventListener("click", function () {
      var on = button.getAttribute("aria-pressed") !== "true";
      setSound(on);
      if (on) { beep(); }
    });
    var saved = null;
    try { saved = localStorage.getItem("stopmo-sound"); } catch (e) { /* private mode */ }
    if (saved === "on") { setSound(true); }
  }
  // A form that does something for good asks first (data-confirm holds the question).
  document.addEventListener("submit", function (event) {
    var question = event.target.getAttribute && event.target.getAttribute("data-confirm");
    if (question && !window.confirm(question)) { event.preventDefault(); }
  });
  if (live) {
    loudIds().forEach(function (id) { known[id] = true; });
    window.setInterval(refresh, 3000);
  }
})();
