// An AudioWorklet that hands each block of the microphone's first channel to the page (app.js), which builds a WAV.
class Recorder extends AudioWorkletProcessor {
  process(inputs, outputs) {
    const channel = inputs[0] && inputs[0][0];
    if (channel) this.port.postMessage(channel.slice(0));
    return true;
  }
}

registerProcessor("recorder", Recorder);
