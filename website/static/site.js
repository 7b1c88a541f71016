// The site's only script: no framework, no inline code (the CSP allows none).
// Every word it shows is in the page (data- attributes and hidden elements).

// Say so plainly when the video cannot be reached (store down, link expired).
(function () {
  var player = document.getElementById("player");
  if (!player) { return; }
  player.addEventListener("error", function () {
    var message = document.querySelector(".video-error");
    if (message) { message.hidden = false; }
  });
})();

// Share: the phone's own share sheet where there is one, else copy the link, else show it.
(function () {
  var button = document.querySelector("button.share");
  if (!button) { return; }
  var url = button.getAttribute("data-url");
  var copied = document.querySelector(".copied");
  var fallback = document.querySelector(".copy-link");

  function showLink() {
    if (!fallback) { return; }
    fallback.hidden = false;
    var field = fallback.querySelector("input");
    field.focus();
    field.select();
  }

  function copy() {
    if (!navigator.clipboard || !window.isSecureContext) { showLink(); return; }
    navigator.clipboard.writeText(url).then(function () {
      if (copied) { copied.hidden = false; }
    }, showLink);
  }

  button.hidden = false;
  button.addEventListener("click", function () {
    var data = {title: button.getAttribute("data-title"),
                text: button.getAttribute("data-text"), url: url};
    if (navigator.share && (!navigator.canShare || navigator.canShare(data))) {
      navigator.share(data).catch(function (error) {
        if (error && error.name !== "AbortError") { copy(); }  // AbortError: they changed their mind
      });
    } else {
      copy();
    }
  });
})();

// "Being made": ask /api/code/<code> every few seconds, then ever less often (with some
// jitter, so a hall full of phones does not ask in step), for a day at most; honour a
// server's Retry-After; check at once when the phone is back online or the page is looked
// at again. When the movie is here, go to it (replacing this page in the history).
(function () {
  var box = document.getElementById("waiting");
  if (!box || !window.fetch) { return; }
  var url = box.getAttribute("data-poll");
  var delay = parseFloat(box.getAttribute("data-first")) || 3;
  var longest = parseFloat(box.getAttribute("data-longest")) || 300;
  var until = Date.now() + (parseFloat(box.getAttribute("data-for")) || 86400) * 1000;
  var timer = null;
  var busy = false;
  var asked = 0;  // when the last check started

  function show(state) {
    var states = box.querySelectorAll(".state");
    for (var i = 0; i < states.length; i++) {
      states[i].hidden = states[i].getAttribute("data-state") !== state;
    }
  }

  function schedule(seconds) {
    clearTimeout(timer);
    var wait = seconds * 1000 * (0.8 + Math.random() * 0.4);
    if (Date.now() + wait > until) { timer = null; show("gave-up"); return; }
    timer = setTimeout(check, wait);
  }

  function later(retryAfter) {
    var next = Math.max(delay, retryAfter || 0);
    delay = Math.min(longest, delay * 1.5);
    schedule(next);
  }

  function check() {
    if (busy) { return; }
    busy = true;
    asked = Date.now();
    clearTimeout(timer);
    fetch(url, {headers: {"Accept": "application/json"}, credentials: "omit"})
      .then(function (response) {
        if (!response.ok) {  // 429 or 503 in a rush: wait as long as the server asks
          var asked = parseFloat(response.headers.get("Retry-After"));
          throw {retryAfter: isNaN(asked) ? 0 : asked};
        }
        return response.json();
      })
      .then(function (doc) {
        busy = false;
        if (doc.status === "ready" && /^\/[^\/]/.test(doc.url)) {  // a page of this site
          show("ready");
          window.location.replace(doc.url);
          return;
        }
        show("waiting");
        later();
      })
      .catch(function (error) {
        busy = false;
        if (navigator.onLine === false) { show("offline"); }
        later(error && error.retryAfter);
      });
  }

  function checkSoon() {  // not given up, and not asked in the last few seconds
    if (timer !== null && Date.now() - asked > 5000) { check(); }
  }

  window.addEventListener("online", function () { show("waiting"); checkSoon(); });
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) { checkSoon(); }
  });
  schedule(delay);
})();
