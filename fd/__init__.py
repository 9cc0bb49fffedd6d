"""Face-detection stage: dataset converters to the YOLO layout and YOLOv8n training (issue 3)."""
