// Writes fixture inputs that Pillow cannot write: a YCCK JPEG (Adobe transform 2), JPEG coding variants
// (arithmetic coding, restart intervals, 4:1:1 and 4:4:0 sampling, tiny sizes) and Adam7-interlaced PNGs. Build and run from this directory:  cc make_c_inputs.c -ljpeg -lpng16 -o /tmp/mk && /tmp/mk
#include <stdio.h>
#include <stdlib.h>
#include <jpeglib.h>
#include <png.h>

enum { W = 37, H = 53 };

static unsigned char pattern(int x, int y, int c) { return (unsigned char)((x * 7 + y * 13 + c * 71 + (x * y) % 29) & 255); }

static void write_ycck(const char *path) {
    struct jpeg_compress_struct cinfo;
    struct jpeg_error_mgr jerr;
    FILE *f = fopen(path, "wb");
    cinfo.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&cinfo);
    jpeg_stdio_dest(&cinfo, f);
    cinfo.image_width = W;
    cinfo.image_height = H;
    cinfo.input_components = 4;
    cinfo.in_color_space = JCS_CMYK;
    jpeg_set_defaults(&cinfo);
    jpeg_set_colorspace(&cinfo, JCS_YCCK);
    jpeg_set_quality(&cinfo, 90, TRUE);
    jpeg_start_compress(&cinfo, TRUE);
    unsigned char row[W * 4];
    while (cinfo.next_scanline < H) {
        int y = cinfo.next_scanline;
        for (int x = 0; x < W; x++)
            for (int c = 0; c < 4; c++) row[x * 4 + c] = pattern(x, y, c);
        JSAMPROW r = row;
        jpeg_write_scanlines(&cinfo, &r, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    fclose(f);
}

// variant: 0 arithmetic, 1 restart interval, 2 4:1:1, 3 4:4:0, 4 smoothing + optimized Huffman
static void write_jpeg_variant(const char *path, int w, int h, int variant) {
    struct jpeg_compress_struct cinfo;
    struct jpeg_error_mgr jerr;
    FILE *f = fopen(path, "wb");
    cinfo.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&cinfo);
    jpeg_stdio_dest(&cinfo, f);
    cinfo.image_width = w;
    cinfo.image_height = h;
    cinfo.input_components = 3;
    cinfo.in_color_space = JCS_RGB;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, 85, TRUE);
    if (variant == 0) cinfo.arith_code = TRUE;
    if (variant == 1) cinfo.restart_interval = 1;
    if (variant == 2) { cinfo.comp_info[0].h_samp_factor = 4; cinfo.comp_info[0].v_samp_factor = 1; }
    if (variant == 3) { cinfo.comp_info[0].h_samp_factor = 1; cinfo.comp_info[0].v_samp_factor = 2; }
    if (variant == 4) { cinfo.smoothing_factor = 30; cinfo.optimize_coding = TRUE; }
    jpeg_start_compress(&cinfo, TRUE);
    unsigned char *row = malloc((size_t)w * 3);
    while (cinfo.next_scanline < (JDIMENSION)h) {
        int y = cinfo.next_scanline;
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++) row[x * 3 + c] = pattern(x, y, c);
        JSAMPROW r = row;
        jpeg_write_scanlines(&cinfo, &r, 1);
    }
    free(row);
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    fclose(f);
}

static void write_png(const char *path, int depth, int color_type, int channels) {
    FILE *f = fopen(path, "wb");
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    png_init_io(png, f);
    png_set_IHDR(png, info, W, H, depth, color_type, PNG_INTERLACE_ADAM7, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (color_type == PNG_COLOR_TYPE_PALETTE) {
        png_color palette[16];
        for (int i = 0; i < 16; i++) {
            palette[i].red = (png_byte)(i * 16);
            palette[i].green = (png_byte)(255 - i * 9);
            palette[i].blue = (png_byte)(i * 37 % 256);
        }
        png_set_PLTE(png, info, palette, 16);
    }
    png_write_info(png, info);
    int bytes = depth / 8 ? depth / 8 : 1;
    size_t rowbytes = png_get_rowbytes(png, info);
    png_bytep *rows = malloc(sizeof(png_bytep) * H);
    for (int y = 0; y < H; y++) {
        rows[y] = calloc(1, rowbytes);
        if (color_type == PNG_COLOR_TYPE_PALETTE) {  // 4-bit indices
            for (int x = 0; x < W; x++) rows[y][x / 2] |= (png_byte)((pattern(x, y, 0) % 16) << (x % 2 ? 0 : 4));
            continue;
        }
        for (int x = 0; x < W; x++)
            for (int c = 0; c < channels; c++) {
                unsigned v = pattern(x, y, c);
                if (bytes == 2) {
                    unsigned w = v * 257 - (x % 3);
                    rows[y][(x * channels + c) * 2] = (png_byte)(w >> 8);
                    rows[y][(x * channels + c) * 2 + 1] = (png_byte)(w & 255);
                } else {
                    rows[y][x * channels + c] = (png_byte)v;
                }
            }
    }
    png_write_image(png, rows);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    for (int y = 0; y < H; y++) free(rows[y]);
    free(rows);
    fclose(f);
}

int main(void) {
    write_ycck("c_inputs/ycck.jpg");
    write_jpeg_variant("c_inputs/arithmetic.jpg", W, H, 0);
    write_jpeg_variant("c_inputs/restart.jpg", W, H, 1);
    write_jpeg_variant("c_inputs/s411.jpg", W, H, 2);
    write_jpeg_variant("c_inputs/s440.jpg", W, H, 3);
    write_jpeg_variant("c_inputs/optimized.jpg", W, H, 4);
    write_jpeg_variant("c_inputs/tiny1x1.jpg", 1, 1, 1);
    write_jpeg_variant("c_inputs/thin3x97.jpg", 3, 97, 2);
    write_png("c_inputs/interlaced_rgb.png", 8, PNG_COLOR_TYPE_RGB, 3);
    write_png("c_inputs/interlaced_rgba16.png", 16, PNG_COLOR_TYPE_RGB_ALPHA, 4);
    write_png("c_inputs/interlaced_p4.png", 4, PNG_COLOR_TYPE_PALETTE, 1);
    return 0;
}
