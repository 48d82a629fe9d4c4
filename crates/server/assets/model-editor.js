// The model editor, checked as you type: a moment after the text stops changing, it is posted to
// /models/check and the diagnostics are listed under the text area, each with a button that
// selects its line in the text. The page works without this script: "Check" does the same.
(function () {
  "use strict";
  var area = document.getElementById("model-source");
  var live = document.getElementById("live-check");
  var form = area && area.form;
  if (!area || !live || !form || !window.fetch) {
    return;
  }
  var timer = null;
  var asked = 0;

  function selectLine(line) {
    var lines = area.value.split("\n");
    var start = 0;
    for (var i = 0; i < line - 1 && i < lines.length; i++) {
      start += lines[i].length + 1;
    }
    var end = start + (lines[line - 1] || "").length;
    area.focus();
    area.setSelectionRange(start, end);
    // Scroll the text area so that the line shows.
    var lineHeight = area.scrollHeight / Math.max(lines.length, 1);
    area.scrollTop = Math.max(0, (line - 3) * lineHeight);
  }

  function show(answer) {
    live.hidden = false;
    live.textContent = "";
    var title = document.createElement("p");
    title.className = "live-check-title";
    var errors = answer.diagnostics.filter(function (d) { return d.severity === "error"; }).length;
    var warnings = answer.diagnostics.length - errors;
    title.textContent = errors > 0
      ? errors + (errors === 1 ? " error" : " errors") + " as you type"
      : (warnings > 0 ? "Compiles, with " + warnings + (warnings === 1 ? " warning" : " warnings") : "Compiles, without a warning");
    live.appendChild(title);
    if (answer.diagnostics.length === 0) {
      return;
    }
    var list = document.createElement("ul");
    list.className = "diagnostics";
    answer.diagnostics.forEach(function (d) {
      var item = document.createElement("li");
      item.className = "diagnostic-" + d.severity;
      var word = document.createElement("span");
      word.className = "diagnostic-severity severity-" + d.severity;
      word.textContent = d.severity === "error" ? "Error" : "Warning";
      item.appendChild(word);
      item.appendChild(document.createTextNode(" "));
      if (d.line) {
        var go = document.createElement("button");
        go.type = "button";
        go.className = "link-button";
        go.textContent = "line " + d.line + (d.column ? ", column " + d.column : "");
        go.addEventListener("click", function () { selectLine(d.line); });
        item.appendChild(go);
        item.appendChild(document.createTextNode(": "));
      }
      item.appendChild(document.createTextNode(d.message));
      list.appendChild(item);
    });
    live.appendChild(list);
  }

  function check() {
    var mine = ++asked;
    var body = new URLSearchParams();
    body.set("csrf", form.elements.csrf.value);
    body.set("source", area.value);
    fetch("/models/check", { method: "POST", body: body, credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (answer) {
        if (answer && mine === asked) {
          show(answer);
        }
      })
      .catch(function () { /* The buttons still work. */ });
  }

  area.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(check, 600);
  });
})();
