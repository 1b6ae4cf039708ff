#!/bin/sh
# make.sh -- regenerate the media test files in this folder.
#
# Not run by the build: the outputs are committed, and the unit tests assert their
# exact properties (see README.md), so regenerate only on purpose and update the
# tests if a value changes. Needs Debian packages: imagemagick (convert, identify),
# sox, espeak-ng, mate-backgrounds (the real photos), coreutils.
#
#   sh tests/data/make.sh
set -eu
cd "$(dirname "$0")"

PHOTOS=/usr/share/backgrounds/mate/nature
[ -d "$PHOTOS" ] || { echo "install mate-backgrounds first" >&2; exit 1; }
# The real ImageMagick, not a wrapper that may sit earlier in PATH.
CONVERT=/usr/bin/convert
# -strip: no EXIF/ICC/date chunks, so the bytes depend only on the pixels.
IM="-strip -define png:exclude-chunks=date,time"

# ---- good images ------------------------------------------------------------------
# photo.jpg: 640x480 baseline YCbCr JPEG, a crop of a real photo (a ladybird).
$CONVERT "$PHOTOS/LadyBird.jpg" -resize 1024x640 -gravity center -crop 640x480+0+0 +repage \
    $IM -sampling-factor 2x2 -quality 85 photo.jpg
# photo_copy.jpg: identical bytes, for duplicate detection.
cp photo.jpg photo_copy.jpg
# photo2.jpg: 480x640 portrait crop of another photo (a meadow).
$CONVERT "$PHOTOS/GreenMeadow.jpg" -resize 800x640 -gravity center -crop 480x640+0+0 +repage \
    $IM -quality 80 photo2.jpg
# gray.jpg: 320x240 single-component (grayscale) JPEG.
$CONVERT "$PHOTOS/YellowFlower.jpg" -resize 384x240 -gravity center -crop 320x240+0+0 +repage \
    $IM -colorspace Gray -type Grayscale -quality 85 gray.jpg
# progressive.jpg: 400x300 progressive (multi-scan) JPEG.
$CONVERT "$PHOTOS/Garden.jpg" -resize 480x300 -gravity center -crop 400x300+0+0 +repage \
    $IM -interlace JPEG -quality 85 progressive.jpg
# cmyk.jpg: 320x240 four-component Adobe CMYK JPEG of photo.jpg's picture.
$CONVERT photo.jpg -resize 320x240 $IM -colorspace CMYK -quality 90 cmyk.jpg
# photo.png: 320x240 8-bit RGB, non-interlaced.
$CONVERT "$PHOTOS/Storm.jpg" -resize 360x240 -gravity center -crop 320x240+0+0 +repage \
    $IM PNG24:photo.png
# alpha.png: 200x150 8-bit RGBA; alpha fades from opaque (top) to transparent (bottom).
$CONVERT "$PHOTOS/FreshFlower.jpg" -resize 200x150^ -gravity center -crop 200x150+0+0 +repage \
    \( -size 200x150 gradient:white-black \) -alpha off -compose CopyOpacity -composite \
    $IM PNG32:alpha.png
# palette.png: 160x120 indexed colour (PLTE, at most 64 colours, no transparency).
$CONVERT "$PHOTOS/YellowFlower.jpg" -resize 192x120 -gravity center -crop 160x120+0+0 +repage \
    $IM -colors 64 PNG8:palette.png
# interlaced.png: photo.png's pixels again, Adam7 interlaced (the same pixels in
# another order, so its thumbnail must be byte-identical to photo.png's).
$CONVERT photo.png $IM -interlace PNG PNG24:interlaced.png
# deep.png: 64x48 16-bit-per-channel RGB (tests the 16 -> 8 bit transform).
$CONVERT "$PHOTOS/Aqua.jpg" -resize 77x48 -gravity center -crop 64x48+0+0 +repage \
    $IM -depth 16 PNG48:deep.png

# ---- good audio ---------------------------------------------------------------------
# speech.wav: espeak-ng speaking a sentence (22050 Hz), resampled to 16 kHz mono 16-bit
# PCM. -D: no dither, so sox's output is repeatable.
espeak-ng -v en -s 160 -w speech_22k.tmp.wav "The quick brown fox jumps over the lazy dog."
sox -D speech_22k.tmp.wav -r 16000 -c 1 -b 16 -e signed-integer speech.wav
rm -f speech_22k.tmp.wav
# speech.flac / speech.ogg: the same samples as FLAC and as Ogg Vorbis.
sox -D speech.wav speech.flac
sox -D speech.wav -C 3 speech.ogg
# stereo.wav: 2.0 s, 44.1 kHz, 16-bit stereo; left a 440 Hz sine, right 660 Hz, -6 dBFS.
sox -D -n -r 44100 -c 2 -b 16 -e signed-integer stereo.wav synth 2.0 sine 440 sine 660 gain -6

# ---- bad files ------------------------------------------------------------------------
size() { wc -c <"$1" | tr -d ' '; }
# truncated.jpg: the first 60% of photo.jpg (ends inside the entropy-coded data).
head -c $(( $(size photo.jpg) * 60 / 100 )) photo.jpg >truncated.jpg
# corrupt.jpg: photo.jpg with 64 bytes in the middle of the scan data overwritten by
# garbage that starts with 0xFF 0x99, an invalid marker inside entropy-coded data, so
# libjpeg reliably reports "Corrupt JPEG data" (checked by the unit test).
cp photo.jpg corrupt.jpg
printf '\377\231GARBAGEGARBAGEGARBAGEGARBAGEGARBAGEGARBAGEGARBAGEGARBAGE\377\377\001\002\003\004' |
    dd of=corrupt.jpg bs=1 seek=$(( $(size photo.jpg) / 2 )) conv=notrunc status=none
# truncated.png: the first 60% of photo.png (ends inside IDAT).
head -c $(( $(size photo.png) * 60 / 100 )) photo.png >truncated.png
# corrupt.png: photo.png with the last byte of the first IDAT chunk's CRC inverted: the
# pixel data is intact, only the checksum is wrong ("IDAT: CRC error").
cp photo.png corrupt.png
idat=$(grep -abo IDAT photo.png | head -n 1 | cut -d: -f1)   # offset of the chunk type
len=$(od -An -tu1 -j $(( idat - 4 )) -N 4 photo.png |
      awk '{ print $1 * 16777216 + $2 * 65536 + $3 * 256 + $4 }')  # big-endian length
off=$(( idat + 4 + len + 3 ))
byte=$(od -An -tu1 -j "$off" -N 1 photo.png | tr -d ' ')
printf "\\$(printf '%03o' $(( 255 - byte )))" |
    dd of=corrupt.png bs=1 seek="$off" conv=notrunc status=none
# empty.jpg: 0 bytes.
: >empty.jpg
# text.wav: a text file with an audio extension.
printf 'These are my meeting notes, not a WAV file.\nSecond line.\n' >text.wav
# png_named.jpg: a PNG (palette.png) with a lying .jpg extension.
cp palette.png png_named.jpg
# truncated.wav: the first half of speech.wav; its header still declares all the data.
head -c $(( $(size speech.wav) / 2 )) speech.wav >truncated.wav
# truncated.flac: the first half of speech.flac; STREAMINFO still declares all frames.
head -c $(( $(size speech.flac) / 2 )) speech.flac >truncated.flac

ls -l
