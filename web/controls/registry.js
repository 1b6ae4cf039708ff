// registry.js -- the built-in controls of the template engine, by template type.
// Each module exports create(spec, ctx) (interface in shell.js).
import * as choice from './choice.js';
import * as multiChoice from './multi_choice.js';
import * as text from './text.js';
import * as bbox from './bbox.js';
import * as polygon from './polygon.js';
import * as keypoints from './keypoints.js';
import * as audioSegments from './audio_segments.js';
import * as transcription from './transcription.js';

export const controls = {
  choice,
  multi_choice: multiChoice,
  text,
  bbox,
  polygon,
  keypoints,
  audio_segments: audioSegments,
  transcription,
};

export const imageTypes = new Set(['bbox', 'polygon', 'keypoints']);
export const audioTypes = new Set(['audio_segments', 'transcription']);
