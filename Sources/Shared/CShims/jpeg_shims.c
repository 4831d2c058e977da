// JPEG decode wrapper (libjpeg + setjmp). Filled in with the ImageInput module.
