// Applies the remembered theme before the page paints (loaded in <head>, no
// inline script under the Content-Security-Policy).
(function () {
  try {
    var t = localStorage.getItem("mindrouter-theme");
    if (t === "dark" || t === "light") document.documentElement.setAttribute("data-theme", t);
  } catch (e) { /* storage refused: follow the system */ }
})();
