// Say so plainly when the video cannot be reached (store down, link expired).
(function () {
  var player = document.getElementById("player");
  if (!player) { return; }
  player.addEventListener("error", function () {
    var message = document.querySelector(".video-error");
    if (message) { message.hidden = false; }
  });
})();
