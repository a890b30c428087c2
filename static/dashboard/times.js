// Times in UTC (as the server writes them) or in this browser's time zone.  Every element
// with data-epoch (seconds) is rewritten from it; the choice is kept in localStorage.
// Without this script the page shows UTC, and the toggle stays hidden.
"use strict";

(function () {
  const KEY = "dashboard.timeZone";
  const DAY = 86400;
  const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  let zone = "utc";
  try {
    zone = window.localStorage.getItem(KEY) === "local" ? "local" : "utc";
  } catch (error) {
    zone = "utc"; // storage refused (privacy settings): UTC, as without the script
  }

  function pad(n, width) {
    return String(n).padStart(width || 2, "0");
  }

  // The parts of a moment in the chosen zone.
  function parts(epoch) {
    const d = new Date(epoch * 1000);
    const local = zone === "local";
    return {
      year: local ? d.getFullYear() : d.getUTCFullYear(),
      month: local ? d.getMonth() : d.getUTCMonth(),
      day: local ? d.getDate() : d.getUTCDate(),
      hour: local ? d.getHours() : d.getUTCHours(),
      minute: local ? d.getMinutes() : d.getUTCMinutes(),
      second: local ? d.getSeconds() : d.getUTCSeconds(),
      ms: d.getUTCMilliseconds(),
      date: d,
    };
  }

  function zoneName(date) {
    if (zone !== "local") return "UTC";
    const named = new Intl.DateTimeFormat(undefined, { timeZoneName: "short" })
      .formatToParts(date)
      .find((part) => part.type === "timeZoneName");
    return named ? named.value : "local";
  }

  function day(p) {
    return p.year + "-" + pad(p.month + 1) + "-" + pad(p.day);
  }

  // "2024-05-01 12:00:00.123 UTC": a received time in the list.
  function full(epoch) {
    const p = parts(epoch);
    return day(p) + " " + pad(p.hour) + ":" + pad(p.minute) + ":" + pad(p.second) + "." +
      pad(p.ms, 3) + " " + zoneName(p.date);
  }

  // "2024-05-01 12:00 UTC", or the date alone for day-long chart buckets.
  function minutes(epoch, bucket) {
    const p = parts(epoch);
    if (bucket >= DAY) return day(p);
    return day(p) + " " + pad(p.hour) + ":" + pad(p.minute) + " " + zoneName(p.date);
  }

  // An axis label: "May 01" for day buckets, else "12:00", with the date when it changes.
  function axis(epoch, bucket, previous) {
    const p = parts(epoch);
    const date = MONTHS[p.month] + " " + pad(p.day);
    if (bucket >= DAY) return date;
    const time = pad(p.hour) + ":" + pad(p.minute);
    return previous === day(p) ? time : date + " " + time;
  }

  function apply(root) {
    let previousDay = null;
    for (const element of (root || document).querySelectorAll("[data-epoch]")) {
      const epoch = Number(element.dataset.epoch);
      if (!Number.isFinite(epoch)) continue;
      const bucket = Number(element.dataset.bucket || 0);
      if (element.dataset.utc === undefined) element.dataset.utc = element.textContent;
      if (zone === "utc") {
        element.textContent = element.dataset.utc; // exactly what the server wrote
      } else if (element.dataset.axis) {
        element.textContent = axis(epoch, bucket, previousDay);
        previousDay = day(parts(epoch));
      } else if (element.tagName.toLowerCase() === "title") {
        const text = element.dataset.utc;
        const what = text.slice(text.lastIndexOf(": ") + 2);
        element.textContent = minutes(epoch, bucket) + ": " + what;
      } else if (element.closest("td.time")) {
        element.textContent = full(epoch);
      } else {
        element.textContent = minutes(epoch, bucket);
      }
    }
  }

  window.dashboardTimes = { apply: apply, full: full };

  document.addEventListener("DOMContentLoaded", () => {
    const toggle = document.getElementById("tz-toggle");
    const select = document.getElementById("tz");
    if (toggle && select) {
      const name = Intl.DateTimeFormat().resolvedOptions().timeZone;
      if (name) select.options[1].textContent = "this browser's zone (" + name + ")";
      select.value = zone;
      toggle.hidden = false;
      select.addEventListener("change", () => {
        zone = select.value === "local" ? "local" : "utc";
        try {
          window.localStorage.setItem(KEY, zone);
        } catch (error) {
          // not kept across pages; this page still switches
        }
        apply(document);
      });
    }
    apply(document);
  });
})();
