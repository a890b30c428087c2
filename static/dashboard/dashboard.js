// Auto-refresh of the disconnects page: fetch the first page of the same filters from the
// JSON API and put the rows newer than the newest shown at the top.  Text only, never HTML
// (every field can come from whoever reached the callback URL).
"use strict";

(function () {
  const table = document.getElementById("disconnects");
  const toggle = document.getElementById("auto-refresh");
  const status = document.getElementById("refresh-status");
  if (!table || !toggle) return;
  const seconds = Number(table.dataset.refreshSeconds || 0);
  if (!seconds) return;
  const apiUrl = table.dataset.apiUrl;
  const callUrl = table.dataset.callUrl;
  let newest = Number(table.dataset.newestId || 0);
  let timer = null;

  function when(epoch) {
    return new Date(epoch * 1000).toISOString().replace("T", " ").replace("Z", " UTC");
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "";
    const whole = Math.floor(seconds);
    const hours = Math.floor(whole / 3600);
    const minutes = Math.floor((whole % 3600) / 60);
    const secs = String(whole % 60).padStart(2, "0");
    return hours ? hours + ":" + String(minutes).padStart(2, "0") + ":" + secs : minutes + ":" + secs;
  }

  // Each cell names its column, which the narrow (card) layout shows beside the value.
  const labels = Array.from(table.tHead.rows[0].cells, (th) => th.textContent);
  let column = 0;

  function cell(text, className) {
    const td = document.createElement("td");
    if (className) td.className = className;
    td.dataset.label = labels[column++ % labels.length];
    td.textContent = text === null || text === undefined ? "" : String(text);
    return td;
  }

  function row(item) {
    const tr = document.createElement("tr");
    column = 0;
    tr.dataset.id = String(item.id);
    tr.className = (item.category === "hangup" ? "normal" : "abnormal") + " fresh";
    tr.dataset.category = item.category;
    const time = document.createElement("time");
    time.dateTime = item.receivedAtIso;
    time.dataset.epoch = String(item.receivedAt);
    time.textContent = when(item.receivedAt);
    const timeCell = cell("", "time");
    timeCell.appendChild(time);
    tr.appendChild(timeCell);
    const cause = document.createElement("span");
    cause.className = "cause";
    cause.textContent = item.cause;
    const causeCell = cell("");
    causeCell.appendChild(cause);
    if (item.category && item.category !== item.cause) {
      const category = document.createElement("span");
      category.className = "category";
      category.textContent = item.category;
      causeCell.appendChild(document.createTextNode(" "));
      causeCell.appendChild(category);
    }
    tr.appendChild(causeCell);
    const length = cell(duration(item.durationSeconds), "num duration");
    if (item.talkSeconds !== null && item.talkSeconds !== undefined) {
      length.title = "talked " + duration(item.talkSeconds);
    }
    tr.appendChild(length);
    tr.appendChild(cell(item.direction, "direction"));
    tr.appendChild(cell(item.flow, "flow"));
    tr.appendChild(cell(item.from, "number"));
    tr.appendChild(cell(item.to, "number"));
    const callCell = cell("", "call");
    if (item.callId) {
      const link = document.createElement("a");
      link.className = "call-link";
      link.href = callUrl + encodeURIComponent(item.callId);
      link.textContent = item.callId;
      callCell.appendChild(link);
    }
    tr.appendChild(callCell);
    tr.appendChild(cell(item.tag, "tag"));
    tr.appendChild(cell(item.errorId, "mono"));
    tr.appendChild(cell(item.errorMessage, "message"));
    tr.appendChild(cell(item.sipResponseCode));
    if (window.dashboardTimes) window.dashboardTimes.apply(tr);
    return tr;
  }

  async function refresh() {
    try {
      const reply = await fetch(apiUrl, {
        credentials: "same-origin",
        headers: { Accept: "application/json", "X-Requested-With": "dashboard" },
      });
      if (reply.status === 401) {
        status.textContent = "Logged out: reload the page to log in again.";
        stop();
        return;
      }
      if (!reply.ok) throw new Error("HTTP " + reply.status);
      const data = await reply.json();
      const fresh = data.disconnects.filter((item) => item.id > newest);
      const body = table.tBodies[0];
      const empty = body.querySelector("tr.empty");
      if (fresh.length && empty) empty.remove();
      for (const item of fresh.reverse()) body.insertBefore(row(item), body.firstChild);
      if (fresh.length) newest = Math.max(newest, ...fresh.map((item) => item.id));
      status.textContent = "updated " + new Date().toLocaleTimeString() +
        (fresh.length ? " · " + fresh.length + " new (reload for counts and chart)" : "");
    } catch (error) {
      status.textContent = "refresh failed (" + error.message + "); retrying";
    }
  }

  function start() {
    if (timer === null) timer = window.setInterval(refresh, seconds * 1000);
  }

  function stop() {
    if (timer !== null) window.clearInterval(timer);
    timer = null;
  }

  toggle.addEventListener("change", () => (toggle.checked ? start() : stop()));
  start();
})();
