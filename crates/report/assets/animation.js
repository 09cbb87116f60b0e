(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("pool-data").textContent);
  // movable, pinned, unmoveable; two shades so neighbouring buffers stay distinct.
  var COLOURS = [["#0072B2", "#3d97cc"], ["#E69F00", "#f4bd4d"], ["#D55E00", "#e98a45"]];
  var POOL_H = 30, GAP = 6, OVF_H = 18;
  var slider = document.getElementById("anim-slider");
  var playBtn = document.getElementById("anim-play");
  var speedSel = document.getElementById("anim-speed");
  var timeLbl = document.getElementById("anim-time");
  var rows = D.runs.map(function (run, i) {
    return { run: run, canvas: document.getElementById("pool-canvas-" + i), stat: document.getElementById("pool-stat-" + i) };
  });
  var nFrames = D.frames.length;
  var overflowScale = Math.max(D.pool, D.overflowExtent, 1);
  var frame = 0, playing = false, lastTs = null, acc = 0;
  slider.max = String(Math.max(nFrames - 1, 0));
  document.getElementById("ovf-scale").textContent = D.overflowExtent > D.pool
    ? "The overflow bars are drawn to their own scale: full width = " + mib(overflowScale) + "."
    : "The overflow bars use the pool's scale (full width = " + mib(D.pool) + ").";

  function mib(units) { return (units * D.unit / 1048576).toFixed(1) + " MiB"; }

  function fit(canvas) {
    var dpr = window.devicePixelRatio || 1;
    var w = Math.max(Math.round(canvas.clientWidth * dpr), 1);
    var h = Math.round((POOL_H + GAP + OVF_H + 4) * dpr);
    if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
    return dpr;
  }

  function bar(ctx, flatList, x0, y, width, h, scale) {
    var total = 0, count = 0;
    for (var k = 0; k + 2 < flatList.length; k += 3) {
      var x = x0 + flatList[k] / scale * width;
      var w = Math.max(flatList[k + 1] / scale * width, 1);
      ctx.fillStyle = COLOURS[flatList[k + 2]][count % 2];
      ctx.fillRect(x, y, w, h);
      total += flatList[k + 1]; count++;
    }
    return { bytes: total, count: count };
  }

  function drawRow(row) {
    var dpr = fit(row.canvas);
    var ctx = row.canvas.getContext("2d");
    var W = row.canvas.width, s = dpr;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, W, row.canvas.height);
    ctx.fillStyle = "#e9ecef";
    ctx.fillRect(0, 1 * s, W, POOL_H * s);
    var oy = (1 + POOL_H + GAP) * s;
    ctx.fillStyle = "#f7f2fb";
    ctx.fillRect(0, oy, W, OVF_H * s);
    var idx = nFrames ? row.run.frame[frame] : -1;
    var res = { bytes: 0, count: 0 }, ovf = { bytes: 0, count: 0 };
    if (idx >= 0) {
      var snap = row.run.snaps[idx];
      res = bar(ctx, snap[2], 0, 1 * s, W, POOL_H * s, D.pool);
      ovf = bar(ctx, snap[3], 0, oy, W, OVF_H * s, overflowScale);
    }
    ctx.strokeStyle = "#7a7f85"; ctx.lineWidth = 1;
    ctx.strokeRect(0.5, 1 * s + 0.5, W - 1, POOL_H * s - 1);
    ctx.setLineDash([4 * s, 3 * s]);
    ctx.strokeRect(0.5, oy + 0.5, W - 1, OVF_H * s - 1);
    ctx.setLineDash([]);
    row.stat.textContent = "used " + mib(res.bytes) + " of " + mib(D.pool) + " (" + res.count + " buffers), overflow " +
      mib(ovf.bytes) + " (" + ovf.count + ")";
  }

  function draw() {
    rows.forEach(drawRow);
    if (nFrames) {
      var f = D.frames[frame];
      timeLbl.textContent = "event " + f[0].toLocaleString("en") + " of " + D.events.toLocaleString("en") +
        ", trace time " + (f[1] / 1e6).toFixed(3) + " s (frame " + (frame + 1) + "/" + nFrames + ")";
    }
    slider.value = String(frame);
    document.getElementById("animation").setAttribute("data-frame", String(frame));
  }

  function setFrame(i) { frame = Math.min(Math.max(i | 0, 0), Math.max(nFrames - 1, 0)); draw(); }

  function tick(ts) {
    if (!playing) { return; }
    if (lastTs !== null) {
      acc += (ts - lastTs) / 1000 * 12 * parseFloat(speedSel.value);
      var step = Math.floor(acc);
      if (step > 0) {
        acc -= step;
        if (frame + step >= nFrames - 1) { setFrame(nFrames - 1); pause(); return; }
        setFrame(frame + step);
      }
    }
    lastTs = ts;
    window.requestAnimationFrame(tick);
  }

  function play() {
    if (playing || nFrames < 2) { return; }
    if (frame >= nFrames - 1) { setFrame(0); }
    playing = true; lastTs = null; acc = 0;
    playBtn.innerHTML = "&#10074;&#10074; pause";
    window.requestAnimationFrame(tick);
  }

  function pause() { playing = false; playBtn.innerHTML = "&#9654; play"; }

  playBtn.addEventListener("click", function () { if (playing) { pause(); } else { play(); } });
  slider.addEventListener("input", function () { pause(); setFrame(parseInt(slider.value, 10)); });
  document.addEventListener("keydown", function (e) {
    if (e.target && e.target.tagName === "SELECT") { return; }
    if (e.key === " ") { e.preventDefault(); if (playing) { pause(); } else { play(); } }
    else if (e.key === "ArrowRight") { pause(); setFrame(frame + 1); }
    else if (e.key === "ArrowLeft") { pause(); setFrame(frame - 1); }
  });
  window.addEventListener("resize", draw);
  // For scripted checks (tests, screenshots): read and drive the animation.
  window.poolAnimation = {
    frames: nFrames,
    frame: function () { return frame; },
    setFrame: setFrame,
    play: play,
    pause: pause,
    playing: function () { return playing; }
  };
  draw();
})();
