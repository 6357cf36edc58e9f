//! A WebRTC publisher's frames are untrusted: any bytes as H.264 Annex B or Opus, with any RTP
//! times, must be refused or absorbed, never panic, and the playlist must stay renderable.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| moim_media::rtc::replay(data));
