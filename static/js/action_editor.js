// The custom-action editor: Monaco on top of the plain textarea the page works with anyway.
// The textarea stays the form field; Monaco mirrors into it, so saving, the test harness and
// "nothing typed is lost" work the same with or without this file.
(function () {
  "use strict";

  var form = document.getElementById("action-editor-form");
  if (!form) return;

  var sourceArea = form.querySelector("textarea[name=source]");
  var schemaArea = form.querySelector("textarea[name=config_schema]");
  var container = document.getElementById("monaco-container");
  var readOnly = form.dataset.readOnly === "true";
  var dirty = false;
  var submitting = false;
  var dirtyIndicator = document.getElementById("dirty-indicator");

  function csrfToken() {
    var input = form.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function markDirty() {
    dirty = true;
    if (dirtyIndicator) dirtyIndicator.hidden = false;
  }

  function submitSave() {
    var save = document.getElementById("save-button");
    if (save && !readOnly) {
      submitting = true;
      form.requestSubmit(save);
    }
  }

  // Leaving with unsaved changes asks first.
  window.addEventListener("beforeunload", function (event) {
    if (dirty && !submitting) {
      event.preventDefault();
      event.returnValue = "";
    }
  });
  form.addEventListener("submit", function (event) {
    // Only a real save or a no-JS run leaves the page; htmx runs stay on it.
    var submitter = event.submitter;
    if (!submitter || !submitter.hasAttribute("hx-post")) submitting = true;
  });
  form.addEventListener("input", function (event) {
    if (event.target === sourceArea || event.target === schemaArea) markDirty();
    if (event.target.name === "name" || event.target.name === "compatible_triggers") markDirty();
  });

  // Ctrl/Cmd+S saves from anywhere on the page.
  document.addEventListener("keydown", function (event) {
    if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "s") {
      event.preventDefault();
      submitSave();
    }
  });

  // The slug follows the name until the operator edits it by hand.
  var nameInput = form.querySelector("input[name=name]");
  var slugInput = form.querySelector("input[name=slug]");
  if (nameInput && slugInput && nameInput.type !== "hidden") {
    var slugTouched = slugInput.value !== "";
    var deriveSlug = function () {
      if (slugTouched) return;
      slugInput.value = nameInput.value.toLowerCase().normalize("NFKD").replace(/[\u0300-\u036f]/g, "")
        .replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 80);
    };
    slugInput.addEventListener("input", function () { slugTouched = slugInput.value !== ""; });
    nameInput.addEventListener("input", deriveSlug);
    deriveSlug();
  }

  // Confirmation for destructive or history-changing buttons.
  document.addEventListener("submit", function (event) {
    var message = event.target.dataset && event.target.dataset.confirm;
    if (message && !window.confirm(message)) event.preventDefault();
  }, true);

  // Sample input per trigger: replace the harness input unless the operator edited it. The page
  // opens with a sample (or a replayed input) in the box, so that text counts as not edited.
  var openingInput = document.getElementById("harness-input");
  var lastSample = openingInput ? openingInput.value : null;
  document.addEventListener("change", function (event) {
    if (!event.target.matches || !event.target.matches("[data-sample-trigger]")) return;
    var inputArea = document.getElementById("harness-input");
    var url = form.dataset.sampleUrl + "?trigger=" + encodeURIComponent(event.target.value);
    fetch(url, { credentials: "same-origin" }).then(function (r) { return r.text(); }).then(function (text) {
      var untouched = inputArea.value.trim() === "" || inputArea.value === lastSample;
      if (untouched || window.confirm("Replace your edited input with the sample for " + event.target.value + "?")) {
        inputArea.value = text;
        lastSample = text;
      }
    });
  });

  if (!container || typeof window.require !== "function") return;

  // Where each Monaco module lives: one folder in development, every file under its own hashed
  // name in production (see actions_app/templatetags/monaco_static.py). The TypeScript worker's
  // URL comes from the same map.
  var monacoPaths = JSON.parse(document.getElementById("monaco-paths").textContent);
  window.require.config({ paths: monacoPaths });
  window.require(["vs/editor/editor.main"], function () {
    var monaco = window.monaco;
    var ts = monaco.typescript || (monaco.languages && monaco.languages.typescript);
    var defaults = ts.typescriptDefaults;
    // The same rules as the server's compiler: no DOM, strict, ES2022.
    defaults.setCompilerOptions({
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.CommonJS,
      lib: ["lib.es2022.d.ts"],
      strict: true,
      noEmit: true,
      moduleDetection: 3,
    });
    defaults.setDiagnosticsOptions({ noSemanticValidation: false, noSyntaxValidation: false });

    var sdkLib = null;
    function loadSdk() {
      var body = new URLSearchParams();
      body.set("config_schema", schemaArea ? schemaArea.value : "");
      if (form.dataset.actionSlug) body.set("action", form.dataset.actionSlug);
      return fetch(form.dataset.sdkUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-CSRFToken": csrfToken() },
        body: body,
      }).then(function (r) { return r.text(); }).then(function (dts) {
        if (sdkLib) sdkLib.dispose();
        sdkLib = defaults.addExtraLib(dts, "file:///sdk.d.ts");
      });
    }

    var model = monaco.editor.createModel(sourceArea.value, "typescript", monaco.Uri.parse("file:///action.ts"));
    container.hidden = false;
    sourceArea.hidden = true;
    // Unused code stays full strength (Monaco fades it below a readable contrast) and is marked
    // with a dashed underline instead (console.css).
    monaco.editor.defineTheme("console", {
      base: "vs", inherit: true, rules: [], colors: { "editorUnnecessaryCode.opacity": "#000000ff" },
    });
    var editor = monaco.editor.create(container, {
      theme: "console",
      // "dimmed" greys out the number of the empty last line below a readable contrast.
      renderFinalNewline: "on",
      model: model,
      readOnly: readOnly,
      automaticLayout: true,
      minimap: { enabled: false },
      fontSize: 13,
      scrollBeyondLastLine: false,
      ariaLabel: "Source (TypeScript)",
      tabSize: 2,
    });
    window.actionEditor = editor;
    var tabHelp = document.getElementById("tab-focus-help");
    if (tabHelp) tabHelp.hidden = false;

    model.onDidChangeContent(function () {
      sourceArea.value = model.getValue();
      markDirty();
    });
    editor.addCommand(monaco.KeyMod.CtrlCmd | monaco.KeyCode.KeyS, submitSave);

    // Errors the server's compiler found on the last save, shown where they are.
    var serverMarkers = Array.prototype.map.call(document.querySelectorAll("#diagnostics li[data-line]"), function (li) {
      var line = parseInt(li.dataset.line, 10);
      var column = parseInt(li.dataset.column, 10);
      return {
        startLineNumber: line, startColumn: column, endLineNumber: line, endColumn: column + 1,
        message: li.dataset.message, severity: monaco.MarkerSeverity.Error, source: "server",
      };
    });
    monaco.editor.setModelMarkers(model, "server", serverMarkers);
    model.onDidChangeContent(function () { monaco.editor.setModelMarkers(model, "server", []); });

    document.querySelectorAll("#diagnostics li[data-line] a").forEach(function (link) {
      link.addEventListener("click", function (event) {
        event.preventDefault();
        var li = link.closest("li");
        var position = { lineNumber: parseInt(li.dataset.line, 10), column: parseInt(li.dataset.column, 10) };
        editor.setPosition(position);
        editor.revealPositionInCenter(position);
        editor.focus();
      });
    });

    var schemaTimer = null;
    if (schemaArea) {
      schemaArea.addEventListener("input", function () {
        clearTimeout(schemaTimer);
        schemaTimer = setTimeout(loadSdk, 400);
      });
    }
    loadSdk().then(function () { container.dataset.ready = "true"; });
    // The SDK types input.secrets with the action's secret names: after the Secrets panel adds or
    // deletes one, load them again so completion and the type check know at once.
    document.body.addEventListener("htmx:afterSwap", function (event) {
      var target = event.detail && event.detail.target;
      if (target && target.id === "secrets") loadSdk();
    });
  });
})();
