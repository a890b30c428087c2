// The visitor's call progress: poll the status endpoint (state and cause only) until the
// call has ended or failed, and show where the call is.
"use strict";

(function () {
  const box = document.getElementById("progress");
  const text = document.getElementById("call-state");
  if (!box || !text) return;
  const url = box.dataset.statusUrl;
  const order = ["queued", "answered", "connected", "ended"];
  const final = new Set(["ended", "failed"]);
  const started = Date.now();
  const maxMillis = 15 * 60 * 1000;

  const messages = {
    queued: () => "Calling your phone…",
    answered: () => "You answered: connecting you to an agent…",
    connected: () => "Connected to an agent.",
    ended: (cause) => "Call ended (" + cause + ").",
    failed: (cause) => "We could not place the call (" + cause + ").",
    unknown: () => "We are not sure the call went through. If your phone rings, answer it.",
  };

  function show(state, cause) {
    box.dataset.state = state;
    box.dataset.cause = cause || "";
    text.className = "state state-" + state;
    text.textContent = (messages[state] || messages.unknown)(cause || "unknown");
    const reached = order.indexOf(state);
    for (const item of box.querySelectorAll("li[data-step]")) {
      const index = order.indexOf(item.dataset.step);
      item.classList.toggle("done", reached >= 0 && index < reached);
      item.classList.toggle("current", index === reached);
    }
  }

  async function poll() {
    let delay = 1500;
    try {
      const reply = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (reply.status === 404) {
        text.textContent = "This call is no longer available in this browser session.";
        return;
      }
      if (!reply.ok) throw new Error("HTTP " + reply.status);
      const data = await reply.json();
      show(data.state, data.cause);
      if (final.has(data.state)) return;
    } catch (error) {
      delay = 5000;
    }
    if (Date.now() - started < maxMillis) window.setTimeout(poll, delay);
  }

  show(box.dataset.state, box.dataset.cause);
  if (!final.has(box.dataset.state)) window.setTimeout(poll, 1000);
})();
