// The visitor's call progress: poll the status endpoint (state, the furthest step reached,
// and the sentence to show) until the call has ended or failed.  Only the steps the call
// reached are shown: a busy or unanswered call never shows "You answered".
"use strict";

(function () {
  const box = document.getElementById("progress");
  const text = document.getElementById("call-state");
  const again = document.getElementById("ask-again");
  if (!box || !text) return;
  const url = box.dataset.statusUrl;
  const order = ["queued", "answered", "connected"];
  const final = new Set(["ended", "failed"]);
  const started = Date.now();
  const maxMillis = 15 * 60 * 1000;

  // "Ask for another call" once the number's cooldown has run out (askAgainIn seconds).
  function offerAgain(seconds) {
    if (!again || seconds === null || seconds === undefined || seconds === "") return;
    const wait = Number(seconds);
    if (wait <= 0) {
      again.hidden = false;
      text.textContent = text.textContent.replace(/You can ask for another call in \d+ minutes?\./, "You can ask for another call now.");
      return;
    }
    window.setTimeout(function () { offerAgain(0); }, wait * 1000);
  }

  function show(data) {
    const isFinal = final.has(data.state);
    box.dataset.state = data.state;
    box.dataset.cause = data.cause || "";
    box.dataset.reached = data.reached || "";
    text.className = "state state-" + data.state;
    text.textContent = data.message;
    const reached = order.indexOf(data.reached || "");
    for (const item of box.querySelectorAll("li[data-step]")) {
      const step = item.dataset.step;
      if (step === "ended") {
        item.hidden = !isFinal;
        item.textContent = data.state === "ended" ? "Call ended" : "Call not placed";
        item.classList.toggle("current", isFinal);
        continue;
      }
      const index = order.indexOf(step);
      item.hidden = index > reached;
      item.classList.toggle("done", index < reached || (isFinal && index === reached));
      item.classList.toggle("current", !isFinal && index === reached);
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
      show(data);
      if (final.has(data.state)) {
        offerAgain(data.askAgainIn);
        return;
      }
    } catch (error) {
      delay = 5000;
    }
    if (Date.now() - started < maxMillis) window.setTimeout(poll, delay);
  }

  if (!final.has(box.dataset.state)) window.setTimeout(poll, 1000);
  else offerAgain(box.dataset.askAgainIn);
})();
